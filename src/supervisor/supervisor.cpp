// The supervisor's life: start, turn signals into reload / stop / resize, finish.
// Child-level events (spawn, reap, status reports) are in supervisor_children.cpp.
#include "supervisor/supervisor.hpp"

#include <signal.h>

#include <filesystem>
#include <map>

#include "sources/check_sources.hpp"
#include "util/credentials.hpp"
#include "util/log.hpp"

namespace preforkd {
namespace {

// Every signal the supervisor takes; children get them back at SIG_DFL.
// ALRM is no signal of preforkd's, but its default action ended the supervisor (and its
// children's jobs with it) when one was sent by mistake: it is logged and ignored.
constexpr int handled_signals[] = {SIGHUP,  SIGINT,  SIGQUIT,  SIGTERM, SIGTTIN, SIGTTOU,
                                   SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD, SIGALRM};

sigset_t handled_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : handled_signals) sigaddset(&set, signo);
  return set;
}

// Each database file of a source that a jobs pool uses, as it resolves now (symlinks
// followed): a Capistrano `current` switch moves one whose path runs through the
// release, under a config that did not change.
std::map<std::string, std::string> resolved_database_files(const Config& config) {
  std::map<std::string, std::string> files;
  for (const auto& pool : config.pools) {
    if (pool.kind != PoolKind::jobs || files.count(pool.jobs.source)) continue;
    auto source = config.sources.find(pool.jobs.source);
    if (source == config.sources.end()) continue;
    const JobSourceType* type = find_job_source_type(source->second.type);
    if (!type || !type->files) continue;
    auto list = type->files(source->second);
    if (list.empty()) continue;
    std::error_code ec;
    auto resolved = std::filesystem::weakly_canonical(list.front(), ec);
    files[pool.jobs.source] = ec ? list.front() : resolved.string();
  }
  return files;
}

}  // namespace

void hold_supervisor_signals() {
  sigset_t set = handled_signal_set();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
}

Supervisor::Supervisor(Config config)
    : signals_(io_), notifier_(io_), config_(std::move(config)) {
  database_files_ = resolved_database_files(config_);
  for (int signo : handled_signals) signals_.add(signo);
  // Taken now: what arrived while they were held (hold_supervisor_signals) is handled
  // as soon as the loop runs.
  sigset_t set = handled_signal_set();
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  // A closed stderr pipe (multilog restarting) must not kill the supervisor.
  ::signal(SIGPIPE, SIG_IGN);
}

int Supervisor::run() {
  spdlog::info("preforkd {} starting: config {}, {} pool(s), pid {}", PREFORKD_VERSION,
               config_.path, config_.pools.size(), ::getpid());
  wait_for_signal();
  build_pools();
  reconcile_all();
  update_readiness();
  io_.run();
  spdlog::info("preforkd stopped");
  return 0;
}

void Supervisor::build_pools() {
  pools_.clear();
  for (const auto& pool : config_.pools) {
    if (pool.err_respawn_interval.count() == 0)
      spdlog::warn("pool={}: err_respawn_interval 0s turns the respawn backoff off: a child "
                   "that fails at once is replaced as fast as preforkd can fork",
                   pool.name);
    if (std::string note = ignored_credentials_note(pool.name, pool.user, pool.group); !note.empty())
      spdlog::warn("{}", note);
    auto shared = std::make_shared<const PoolConfig>(pool);
    pools_.emplace(pool.name, std::make_unique<PoolRuntime>(io_, shared));
  }
}

void Supervisor::wait_for_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    on_signal(signo);
    wait_for_signal();
  });
}

void Supervisor::on_signal(int signo) {
  switch (signo) {
    case SIGCHLD: reap_children(); break;
    case SIGHUP: reload(); break;
    case SIGQUIT: begin_stop(false, SIGQUIT); break;
    case SIGTERM:
    case SIGINT: begin_stop(true, signo); break;
    case SIGTTIN: resize_all(+1); break;
    case SIGTTOU: resize_all(-1); break;
    case SIGUSR1:
      reopen_log_file();
      if (fork_server_) fork_server_->move_to_reopened_log();
      forward_signal(SIGUSR1);
      break;
    case SIGALRM: spdlog::warn("ALRM received: ignored (preforkd has no use for it)"); break;
    default: forward_signal(signo); break;
  }
}

void Supervisor::reload() {
  if (phase_ != Phase::running) {
    spdlog::warn("HUP ignored: already stopping");
    return;
  }
  if (source_check_) {
    reload_again_ = true;
    spdlog::info("HUP: the last reload is still checking its sources (pid {}); reloading "
                 "again once it has ended", source_check_->pid());
    return;
  }
  notifier_.reloading();
  spdlog::info("reload requested: reading {}", config_.path);
  Config next;
  try {
    next = load_config(config_.path);
  } catch (const ConfigError& e) {
    return reload_failed(e.problems());
  }
  if (!has_sources_to_check(next)) return apply_reload(std::move(next));
  try {
    source_check_ =
        std::make_unique<SourceCheck>(io_, std::move(next), [this] { on_sources_checked(); });
  } catch (const std::exception& e) {
    return reload_failed({e.what()});
  }
  spdlog::info("reload: checking the job sources (pid {})", source_check_->pid());
}

void Supervisor::on_sources_checked() {
  if (!source_check_ || !source_check_->finished()) return;  // a stop abandoned it
  std::unique_ptr<SourceCheck> check = std::move(source_check_);
  if (auto problems = check->problems(); !problems.empty()) return reload_failed(problems);
  apply_reload(std::move(check->config()));
}

void Supervisor::reload_failed(const std::vector<std::string>& problems) {
  spdlog::error("reload failed; still running generation {} with the previous config:",
                generation_);
  for (const auto& problem : problems) spdlog::error("  {}", problem);
  // The reload is over. A generation that was up says so again; one that came up while
  // the sources were checked says so now (update_readiness held it back); one still
  // coming up sends READY=1 once it is up, not before.
  if (!awaiting_ready_) notifier_.ready();
  else update_readiness();
  notifier_.status("reload failed: " + problems.front());
  reload_again_if_asked();
}

void Supervisor::reload_again_if_asked() {
  if (std::exchange(reload_again_, false)) reload();
}

void Supervisor::apply_reload(Config next) {
  if (next.log.file != config_.log.file || next.log.format != config_.log.format ||
      next.log.level != config_.log.level) {
    try {
      configure_logging(next.log);
    } catch (const std::exception& e) {
      spdlog::error("reload: cannot switch logging ({}); keeping the current log", e.what());
      next.log = config_.log;
    }
  }
  if (next.pidfile != config_.pidfile)
    spdlog::warn("reload: a new pidfile path takes effect only at the next start");

  // Found by a probe: with the config under `current` and the default source, a deploy
  // gave the new generation an empty database of the new release, and the jobs queued in
  // the old one were never run, without a word.
  auto next_databases = resolved_database_files(next);
  for (const auto& [source, file] : next_databases)
    if (auto old = database_files_.find(source); old != database_files_.end() && old->second != file)
      spdlog::error("reload: source '{}' now uses the database {}, not {} (a symlink on its path, such as a "
                    "release's `current`, or the path itself changed): jobs still queued in {} are not run "
                    "from now on; keep the database out of the releases (README: Capistrano-style releases)",
                    source, file, old->second, old->second);
  database_files_ = std::move(next_databases);

  ++generation_;
  size_t retiring = 0;
  for (auto& [pid, child] : children_) {
    if (child->stopping) continue;
    ask_to_stop(*child, SIGHUP);
    ++retiring;
  }
  config_ = std::move(next);
  build_pools();
  // The server's plans, its copy of the logging setup, are the old generation's: the
  // new generation's first spawn starts another (none if no pool needs one).
  fork_server_.reset();
  awaiting_ready_ = true;
  generation_started_ = Clock::now();
  spdlog::info("reload: generation {} with {} pool(s); {} old child(ren) finishing their work",
               generation_, config_.pools.size(), retiring);
  reconcile_all();
  update_readiness();
  reload_again_if_asked();
}

void Supervisor::begin_stop(bool fast, int received) {
  if (phase_ == Phase::stopping_fast || (phase_ == Phase::stopping_graceful && !fast)) return;
  phase_ = fast ? Phase::stopping_fast : Phase::stopping_graceful;
  notifier_.stopping();
  spdlog::info("{} received: {} stop of {} child(ren)", signal_name(received),
               fast ? "fast" : "graceful", children_.size());
  for (auto& [name, pool] : pools_) pool->spawn_timer.cancel();
  if (source_check_) {
    spdlog::info("reload abandoned: its source check (pid {}) is killed", source_check_->pid());
    source_check_.reset();
  }
  reload_again_ = false;
  for (auto& [pid, child] : children_) {
    ask_to_stop(*child, received);
    if (fast) arm_kill_timer(child);
  }
  maybe_finish();
}

void Supervisor::maybe_finish() {
  if (phase_ != Phase::running && children_.empty()) io_.stop();
}

void Supervisor::resize_all(int delta) {
  if (phase_ != Phase::running) return;
  for (auto& [name, pool] : pools_) {
    pool->desired = std::max(0, pool->desired + delta);
    spdlog::info("{}: pool={} now {} worker(s)", delta > 0 ? "TTIN" : "TTOU", name,
                 pool->desired);
  }
  reconcile_all();
  update_readiness();
}

void Supervisor::forward_signal(int received) {
  for (auto& [pid, child] : children_) {
    auto pool = pools_.find(child->pool);
    if (pool == pools_.end()) continue;
    if (int signo = pool->second->config->forwarded_signal(received); signo > 0)
      signal_child(*child, signo);
  }
}

std::string Supervisor::status_line() const {
  std::string text = fmt::format("generation {}:", generation_);
  size_t retiring = 0;
  std::map<std::string, std::pair<int, int>> up_busy;
  for (const auto& [pid, child] : children_) {
    if (child->stopping || child->generation != generation_) {
      ++retiring;
      continue;
    }
    auto& counts = up_busy[child->pool];
    if (child->state != Child::State::starting) ++counts.first;
    if (child->state == Child::State::busy) ++counts.second;
  }
  const char* separator = " ";
  for (const auto& [name, pool] : pools_) {
    auto counts = up_busy[name];
    text += fmt::format("{}{} {}/{} up, {} busy", separator, name, counts.first,
                        pool->desired, counts.second);
    separator = "; ";
  }
  if (retiring) text += fmt::format("; {} stopping", retiring);
  return text;
}

void Supervisor::update_readiness() {
  notifier_.status(status_line());
  // While a reload checks its sources it has not ended: READY=1 now would tell systemd
  // (systemctl reload) that the new file is in effect.
  if (!awaiting_ready_ || phase_ != Phase::running || source_check_) return;
  std::map<std::string, int> up;
  for (const auto& [pid, child] : children_) {
    if (!child->stopping && child->generation == generation_ &&
        child->state != Child::State::starting)
      ++up[child->pool];
  }
  for (const auto& [name, pool] : pools_)
    if (up[name] < pool->desired) return;
  awaiting_ready_ = false;
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                    generation_started_);
  spdlog::info("generation {} ready: all pools up in {}ms", generation_, took.count());
  notifier_.ready();
}

}  // namespace preforkd
