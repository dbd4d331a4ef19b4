// The supervisor: one thread, one io_context. Signals, child exits, status reports
// and timers come in as events; the child table changes; the respawn policy decides.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "preforkd/config.hpp"
#include "supervisor/child.hpp"
#include "supervisor/fork_server.hpp"
#include "supervisor/respawn_policy.hpp"
#include "supervisor/source_check.hpp"
#include "supervisor/spawn.hpp"
#include "supervisor/systemd_notifier.hpp"

namespace preforkd {

// A pool of the current generation: its config, how many children it should have
// now (workers, moved by TTIN/TTOU), and when it may spawn next.
struct PoolRuntime {
  PoolRuntime(boost::asio::io_context& io, std::shared_ptr<const PoolConfig> config_)
      : config(std::move(config_)),
        desired(config->workers),
        respawn(config->err_respawn_interval, config->err_respawn_max),
        spawn_timer(io) {}

  std::shared_ptr<const PoolConfig> config;
  int desired;
  RespawnPolicy respawn;
  Clock::time_point next_spawn_at{};
  boost::asio::steady_timer spawn_timer;
  bool spawn_timer_armed = false;
  // Built at the first spawn of a generation and kept while it fits (plan_still_fits):
  // a churning pool then does not rebuild the environment and argv for every child,
  // writing fewer pages that the new child shares copy-on-write.
  std::optional<SpawnPlan> plan;
};

// Blocks the signals a Supervisor takes until one is constructed (it takes them, then
// unblocks them). One that arrives during start-up (a source check waiting on a locked
// database, a slow server) then waits for it, instead of killing the process (the
// default of HUP, TERM, USR1) or stopping it (TTIN, TTOU), without a word.
void hold_supervisor_signals();

class Supervisor {
 public:
  explicit Supervisor(Config config);
  // Runs until a requested stop has completed; returns the exit status.
  int run();

 private:
  enum class Phase { running, stopping_graceful, stopping_fast };

  // events
  void wait_for_signal();
  void on_signal(int signo);
  void reap_children();
  void read_status(const std::shared_ptr<Child>& child);
  void on_status_readable(const std::shared_ptr<Child>& child);
  enum class Unread { none, maybe_more, closed };
  // Acts on the reports the child's status socket holds now (a few kilobytes at a time;
  // all of them once it is `reaped`) and says what is left. `reaped`: the child is gone
  // and its done report changes nothing, but the exit line's request count and an exec
  // failure still include what it wrote just before it died.
  Unread read_reports(Child& child, bool reaped);
  void on_status(Child& child, const StatusReport& report);
  void on_status_closed(const std::shared_ptr<Child>& child);
  void on_child_done(Child& child);
  void log_exit(const Child& child, int wait_status);
  // Right after a forked child is reaped: kills what it started and left in its
  // process group (see supervisor_children.cpp).
  void end_left_behind(const Child& child);
  // The child's pool while the supervisor runs it (current generation), else null: the
  // pool whose count a child's end may change.
  PoolRuntime* running_pool_of(const Child& child);
  void on_child_exit(const std::shared_ptr<Child>& child, int wait_status);

  // actions
  void reload();
  // The reload's sources have been checked (source_check_ finished).
  void on_sources_checked();
  // A new config that passed every check replaces the running generation.
  void apply_reload(Config next);
  void reload_failed(const std::vector<std::string>& problems);
  // At the end of a reload: the one asked for while it checked its sources, if any.
  void reload_again_if_asked();
  void begin_stop(bool fast, int received);
  void resize_all(int delta);
  void forward_signal(int received);
  void reconcile(PoolRuntime& pool);
  void reconcile_all();
  // Spawns up to `wanted` children of the pool (one when it has a spawn_interval) and
  // returns how many; -1 after a failure, with the retry scheduled.
  int spawn_some(PoolRuntime& pool, int wanted);
  void adopt(PoolRuntime& pool, const SpawnPlan& plan, SpawnedChild spawned);
  // The pool's spawn plan for this generation, made again when it no longer fits.
  SpawnPlan& ensure_plan(PoolRuntime& pool);
  // One child per entry of `cpus`: through the fork server (in batches) when the plan
  // runs a function, else (or when the server is gone) by the supervisor's own fork.
  SpawnedChildren fork_children(SpawnPlan& plan, const std::vector<int>& cpus);
  // After a fork server died in the middle of a batch: KILLs every child of this
  // process that is neither a known child, nor in `announced`, nor a helper.
  void kill_unannounced_children(const SpawnedChildren& announced);
  // A fork server that knows `plan`: the current one, or a new one for every pool's plan.
  ForkServer& fork_server_for(const SpawnPlan& plan);
  // What a new fork server or forked child must not keep (neither ever execs, so
  // close-on-exec does not help): every child's status socket, a source check's pipe.
  std::vector<int> supervisor_only_fds() const;
  // cpu_affinity: the CPU for each of the pool's next `count` children, or -1 (not
  // pinned).
  std::vector<int> pick_cpus(const PoolRuntime& pool, int count) const;
  void arm_spawn_timer(PoolRuntime& pool);
  void ask_to_stop(Child& child, int received);
  // Sends `signo` to the child: to its whole process group when it runs a command.
  void signal_child(const Child& child, int signo);
  void arm_kill_timer(const std::shared_ptr<Child>& child);
  void build_pools();
  void maybe_finish();
  void update_readiness();
  std::string status_line() const;

  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  SystemdNotifier notifier_;
  Config config_;
  // Source name -> its database file as resolved when the running generation started.
  std::map<std::string, std::string> database_files_;
  unsigned generation_ = 1;
  Phase phase_ = Phase::running;
  std::map<std::string, std::unique_ptr<PoolRuntime>> pools_;
  std::map<pid_t, std::shared_ptr<Child>> children_;
  std::unique_ptr<ForkServer> fork_server_;
  // A reload waiting for its sources to be checked, and whether another HUP came
  // meanwhile (it reloads again once this one has ended: the file may have changed).
  std::unique_ptr<SourceCheck> source_check_;
  bool reload_again_ = false;
  bool awaiting_ready_ = true;
  Clock::time_point generation_started_ = Clock::now();
};

}  // namespace preforkd
