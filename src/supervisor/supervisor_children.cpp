// Child-level events of the supervisor: spawning to the desired count, reaping, asking
// children to stop and killing the ones that won't. Their status reports:
// supervisor_reports.cpp.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "supervisor/spawn.hpp"
#include "supervisor/supervisor.hpp"
#include "util/child_processes.hpp"
#include "util/log.hpp"

namespace preforkd {
namespace {

constexpr int reset_in_child[] = {SIGHUP,  SIGINT,  SIGQUIT,  SIGTERM, SIGTTIN, SIGTTOU,
                                  SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD, SIGPIPE, SIGALRM};

}  // namespace

void Supervisor::reconcile_all() {
  for (auto& [name, pool] : pools_) reconcile(*pool);
}

void Supervisor::reconcile(PoolRuntime& pool) {
  if (phase_ != Phase::running) return;
  std::vector<Child*> live;
  for (auto& [pid, child] : children_) {
    if (child->pool == pool.config->name && child->generation == generation_ &&
        !child->stopping && !child->done)
      live.push_back(child.get());
  }
  int missing = pool.desired - static_cast<int>(live.size());
  if (missing < 0) {
    // TTOU: retire the children that lose the least: not yet busy first, newest first.
    std::sort(live.begin(), live.end(), [](const Child* a, const Child* b) {
      bool a_busy = a->state == Child::State::busy, b_busy = b->state == Child::State::busy;
      if (a_busy != b_busy) return !a_busy;
      return a->started_at > b->started_at;
    });
    for (int i = 0; i < -missing; ++i) ask_to_stop(*live[i], SIGQUIT);
    return;
  }
  while (missing > 0) {
    if (pool.next_spawn_at > Clock::now()) {
      arm_spawn_timer(pool);
      return;
    }
    int spawned = spawn_some(pool, missing);
    if (spawned <= 0) return;  // failed: the retry is scheduled
    missing -= spawned;
  }
}

void Supervisor::arm_spawn_timer(PoolRuntime& pool) {
  if (pool.spawn_timer_armed) return;
  pool.spawn_timer_armed = true;
  pool.spawn_timer.expires_at(pool.next_spawn_at);
  // The handler looks the pool up by name: a reload may have replaced it meanwhile.
  pool.spawn_timer.async_wait([this, name = pool.config->name, generation = generation_](
                                  const boost::system::error_code& ec) {
    if (ec || generation != generation_) return;
    auto it = pools_.find(name);
    if (it == pools_.end()) return;
    it->second->spawn_timer_armed = false;
    reconcile(*it->second);
    update_readiness();
  });
}

std::vector<int> Supervisor::pick_cpus(const PoolRuntime& pool, int count) const {
  const PoolConfig& config = *pool.config;
  std::vector<int> picked(static_cast<size_t>(count), -1);
  if (!config.cpu_affinity) return picked;
  std::vector<int> cpus = *config.cpu_affinity;
  if (cpus.empty()) {  // auto: wherever the supervisor itself may run
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return picked;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
    if (cpus.empty()) return picked;
  }
  // Each on the CPU with the fewest of this pool's running children (stopping ones
  // included: an old generation still finishing its work still uses its CPU), counting
  // the ones picked before it. A child that reported its clean end is not counted: it
  // is on its way out, and its replacement is picked before it is reaped (counted, it
  // sent the replacement to the other CPU, beside a child already there).
  std::map<int, int> load;
  for (int cpu : cpus) load[cpu] = 0;
  for (const auto& [pid, child] : children_)
    if (child->pool == config.name && !child->done && load.count(child->cpu)) ++load[child->cpu];
  for (int& choice : picked) {
    int best = cpus.front();
    for (int cpu : cpus)
      if (load[cpu] < load[best]) best = cpu;
    choice = best;
    ++load[best];
  }
  return picked;
}

SpawnPlan& Supervisor::ensure_plan(PoolRuntime& pool) {
  const PoolConfig& config = *pool.config;
  if (!pool.plan || !plan_still_fits(*pool.plan, config, generation_)) {
    auto source = config_.sources.find(config.jobs.source);
    pool.plan.reset();
    pool.plan = plan_spawn(config, generation_,
                           source == config_.sources.end() ? nullptr : &source->second);
  }
  return *pool.plan;
}

ForkServer& Supervisor::fork_server_for(const SpawnPlan& plan) {
  if (fork_server_ && fork_server_->serves(plan)) return *fork_server_;
  fork_server_.reset();
  // Every pool's plan at once, so that starting N pools forks one server, not N.
  std::vector<SpawnPlan*> plans;
  for (auto& [name, pool] : pools_) {
    try {
      // A plan that exists stays: re-planning could free the one being spawned.
      if (!pool->plan || pool->plan->generation != generation_) ensure_plan(*pool);
      if (pool->plan->via_fork_server) plans.push_back(&*pool->plan);
    } catch (const std::exception&) {
      // That pool's own spawn reports it.
    }
  }
  fork_server_ = std::make_unique<ForkServer>(std::move(plans), reset_in_child, supervisor_only_fds());
  spdlog::debug("fork server pid={} serves generation {}", fork_server_->pid(), generation_);
  return *fork_server_;
}

SpawnedChildren Supervisor::fork_children(SpawnPlan& plan, const std::vector<int>& cpus) {
  SpawnedChildren forked;
  if (plan.via_fork_server && ForkServer::supported()) {
    try {
      fork_server_for(plan).spawn(plan, cpus, forked);
      return forked;
    } catch (const ForkServerGone& e) {
      spdlog::warn("fork server pid={} {}: forking children directly until the next one",
                   fork_server_ ? fork_server_->pid() : -1, e.what());
      fork_server_.reset();
      kill_unannounced_children(forked);
      // After a failed fork the children are not the first of `cpus`, and the pool
      // retries later anyway.
      if (!forked.error.empty()) return forked;
    }
  }
  // The rest, one fork each. A function child must not keep the supervisor's other
  // descriptors (an exec'd child loses them at exec: close-on-exec), its siblings' too.
  std::vector<int> close_in_child;
  if (plan.function) {
    close_in_child = supervisor_only_fds();
    if (fork_server_) fork_server_->append_fds(close_in_child);
    for (const SpawnedChild& sibling : forked.children) close_in_child.push_back(sibling.status.get());
  }
  for (size_t i = forked.children.size(); i < cpus.size(); ++i) {
    try {
      forked.children.push_back(spawn_child(plan, cpus[i], reset_in_child, close_in_child));
    } catch (const std::exception& e) {
      forked.error = e.what();
      break;
    }
    if (plan.function) close_in_child.push_back(forked.children.back().status.get());
  }
  return forked;
}

std::vector<int> Supervisor::supervisor_only_fds() const {
  std::vector<int> fds;
  for (const auto& [pid, child] : children_) fds.push_back(child->status.native_handle());
  if (source_check_) fds.push_back(source_check_->report_fd());
  return fds;
}

int Supervisor::spawn_some(PoolRuntime& pool, int wanted) {
  const PoolConfig& config = *pool.config;
  auto now = Clock::now();
  // The interval is between any two spawns of the pool.
  if (config.spawn_interval.count() > 0) wanted = std::min(wanted, 1);
  SpawnedChildren forked;
  try {
    SpawnPlan& plan = ensure_plan(pool);
    forked = fork_children(plan, pick_cpus(pool, wanted));
    for (SpawnedChild& spawned : forked.children) adopt(pool, plan, std::move(spawned));
  } catch (const std::exception& e) {
    forked.error = e.what();
  }
  if (!forked.error.empty()) {
    Duration delay = pool.respawn.on_exit(false, Duration{0});
    pool.next_spawn_at = now + delay;
    spdlog::error("cannot spawn pool={}: {}; next try in {}ms", config.name, forked.error,
                  delay.count());
    arm_spawn_timer(pool);
    return -1;
  }
  if (config.spawn_interval.count() > 0) pool.next_spawn_at = now + config.spawn_interval;
  return static_cast<int>(forked.children.size());
}

void Supervisor::adopt(PoolRuntime& pool, const SpawnPlan& plan, SpawnedChild spawned) {
  const PoolConfig& config = *pool.config;
  auto child = std::make_shared<Child>(io_, spawned.pid, config.name, generation_,
                                       config.graceful_timeout, spawned.status.release());
  child->execs = plan.function == nullptr;
  child->cpu = spawned.cpu;
  children_.emplace(spawned.pid, child);
  if (spdlog::should_log(spdlog::level::info))  // the arguments alone allocate
    spdlog::info("spawned pool={} pid={} generation={}{}{}", config.name, spawned.pid,
                 generation_, plan.working_directory.empty() ? "" : " cwd=" + plan.working_directory,
                 spawned.cpu < 0 ? "" : " cpu=" + std::to_string(spawned.cpu));
  read_status(child);
}

void Supervisor::kill_unannounced_children(const SpawnedChildren& announced) {
  // A server that died between a clone and its reply leaves a child of a batch that no
  // one announced: the supervisor's own child, running the pool's function, unknown to
  // reloads, stops and counts. Just born, it has done nothing yet that a KILL loses.
  std::set<pid_t> known;
  for (const auto& [pid, child] : children_) known.insert(pid);
  for (const SpawnedChild& child : announced.children) known.insert(child.pid);
  if (source_check_) known.insert(source_check_->pid());
  for (pid_t pid : live_children_of_self()) {
    if (known.count(pid)) continue;
    ::kill(pid, SIGKILL);
    spdlog::warn("killed pid={}: forked by the fork server that died before it announced it",
                 pid);
  }
}

void Supervisor::reap_children() {
  // Reap everything first, then react: respawning inside the waitpid loop let children
  // that exit at once keep the loop (and so the whole event loop) busy forever, deaf
  // to TERM. Replacements that exit meanwhile are reaped on the next SIGCHLD event.
  std::vector<std::pair<std::shared_ptr<Child>, int>> exited;
  int wait_status = 0;
  for (pid_t pid; (pid = ::waitpid(-1, &wait_status, WNOHANG)) > 0;) {
    auto it = children_.find(pid);
    if (source_check_ && pid == source_check_->pid()) {
      source_check_->reaped(wait_status);
      continue;
    }
    if (fork_server_ && pid == fork_server_->pid()) {
      spdlog::warn("fork server pid={} {}; the next spawn starts another", pid,
                   describe_exit(wait_status));
      fork_server_.reset();
      continue;
    }
    if (it == children_.end() && fork_server_ && fork_server_->forget_spare(pid)) {
      spdlog::warn("fork server's spare pid={} {}; the next child is forked on demand, then "
                   "another spare", pid, describe_exit(wait_status));
      continue;
    }
    if (it == children_.end()) {
      spdlog::debug("reaped pid {} that is not a child of any pool: {}", pid,
                    describe_exit(wait_status));
      continue;
    }
    if (!it->second->execs) end_left_behind(*it->second);
    // What it wrote just before it died may not have been read yet.
    read_reports(*it->second, true);
    // Logged here, as it is reaped: a respawn below (for an earlier exit) then never
    // appears in the log before the exit that made room for it.
    log_exit(*it->second, wait_status);
    exited.emplace_back(it->second, wait_status);
    children_.erase(it);
  }
  for (auto& [child, status] : exited) {
    boost::system::error_code ignored;
    child->status.close(ignored);
    child->kill_timer.cancel();
    on_child_exit(child, status);
  }
  update_readiness();
  maybe_finish();
}

void Supervisor::log_exit(const Child& child, int wait_status) {
  auto lifetime = std::chrono::duration_cast<Duration>(Clock::now() - child.started_at);
  bool clean = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
  auto level = clean || child.stopping ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(level, "exited pool={} pid={} generation={}: {} after {}ms, {} request(s)",
              child.pool, child.pid, child.generation, describe_exit(wait_status),
              lifetime.count(), child.requests);
}

// A forked child (a library pool's function, a jobs worker and its in-process handler)
// is preforkd's code: a stop signals the child alone, which decides when to end. What it
// forked stays in its process group, unasked, and would outlive it, and preforkd too
// (no parent-death signal): a handler's fork that returned went on taking jobs. Killed
// at once after the reap: a group's number is not given to a new process while any
// member lives, and pids are handed out in turn, so this is no other group.
// An exec'd child's group is left alone: a shell running the worker may end before the
// worker it waits for has finished its graceful stop.
void Supervisor::end_left_behind(const Child& child) {
  if (::kill(-child.pid, SIGKILL) == 0)
    spdlog::warn("pool={} pid={}: processes it had started were still running in its process group "
                 "after it exited: killed them (a worker must end what it starts)",
                 child.pool, child.pid);
}

void Supervisor::on_child_exit(const std::shared_ptr<Child>& child, int wait_status) {
  auto lifetime = std::chrono::duration_cast<Duration>(Clock::now() - child->started_at);
  bool clean = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
  PoolRuntime* running = running_pool_of(*child);
  if (!running) return;
  PoolRuntime& pool = *running;
  if (!child->stopping) {
    Duration delay = pool.respawn.on_exit(clean, lifetime);
    if (delay.count() > 0) {
      pool.next_spawn_at = std::max(pool.next_spawn_at, Clock::now() + delay);
      spdlog::warn("respawn pool={} in {}ms ({} consecutive failure(s))", pool.config->name,
                   delay.count(), pool.respawn.consecutive_failures());
    }
  }
  reconcile(pool);
}

void Supervisor::ask_to_stop(Child& child, int received) {
  auto pool = pools_.find(child.pool);
  int signo = pool != pools_.end() ? pool->second->config->forwarded_signal(received)
                                   : PoolConfig{}.forwarded_signal(received);
  if (signo <= 0) signo = received == SIGHUP ? SIGQUIT : received;
  child.stopping = true;
  signal_child(child, signo);
  spdlog::debug("sent {} to pool={} pid={}", signal_name(signo), child.pool, child.pid);
}

void Supervisor::signal_child(const Child& child, int signo) {
  // A command pool's child is often a shell wrapper (`sh -c 'worker; cleanup'`): its
  // whole process group gets the signal, as a terminal's Ctrl-C reaches a whole job, or
  // the wrapper dies and leaves the worker running without a supervisor. ESRCH: the
  // child has not made its group yet (just forked).
  if (child.execs && ::kill(-child.pid, signo) == 0) return;
  if (::kill(child.pid, signo) != 0)
    spdlog::warn("{}", syscall_error("kill", std::to_string(child.pid), errno));
}

void Supervisor::arm_kill_timer(const std::shared_ptr<Child>& child) {
  child->kill_timer.expires_after(child->graceful_timeout);
  child->kill_timer.async_wait([this, child](const boost::system::error_code& ec) {
    if (ec || !children_.count(child->pid)) return;
    spdlog::warn("pool={} pid={} still running after graceful_timeout {}ms: sending KILL",
                 child->pool, child->pid, child->graceful_timeout.count());
    // The whole process group: a shell wrapper's own children go too.
    ::kill(-child->pid, SIGKILL);
    ::kill(child->pid, SIGKILL);
  });
}

}  // namespace preforkd
