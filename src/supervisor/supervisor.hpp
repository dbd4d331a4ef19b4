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
  void on_status(Child& child, const StatusReport& report);
  void on_status_closed(const std::shared_ptr<Child>& child);
  void on_child_done(Child& child);
  void log_exit(const Child& child, int wait_status);
  // The child's pool while the supervisor runs it (current generation), else null: the
  // pool whose count a child's end may change.
  PoolRuntime* running_pool_of(const Child& child);
  void on_child_exit(const std::shared_ptr<Child>& child, int wait_status);

  // actions
  void reload();
  void begin_stop(bool fast, int received);
  void resize_all(int delta);
  void forward_signal(int received);
  void reconcile(PoolRuntime& pool);
  void reconcile_all();
  bool spawn_one(PoolRuntime& pool);
  // The pool's spawn plan for this generation, made again when it no longer fits.
  SpawnPlan& ensure_plan(PoolRuntime& pool);
  // Through the fork server when the plan runs a function, else (or when the server is
  // gone) by the supervisor's own fork.
  SpawnedChild fork_child(const SpawnPlan& plan);
  // A fork server that knows `plan`: the current one, or a new one for every pool's plan.
  ForkServer& fork_server_for(const SpawnPlan& plan);
  // Every child's status socket: what a new fork server or forked child must not keep.
  std::vector<int> status_sockets() const;
  // cpu_affinity: the CPU for the pool's next child, or -1 (not pinned).
  int pick_cpu(const PoolRuntime& pool) const;
  void arm_spawn_timer(PoolRuntime& pool);
  void ask_to_stop(Child& child, int received);
  void arm_kill_timer(const std::shared_ptr<Child>& child);
  void build_pools();
  void maybe_finish();
  void update_readiness();
  std::string status_line() const;

  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  SystemdNotifier notifier_;
  Config config_;
  unsigned generation_ = 1;
  Phase phase_ = Phase::running;
  std::map<std::string, std::unique_ptr<PoolRuntime>> pools_;
  std::map<pid_t, std::shared_ptr<Child>> children_;
  std::unique_ptr<ForkServer> fork_server_;
  bool awaiting_ready_ = true;
  Clock::time_point generation_started_ = Clock::now();
};

}  // namespace preforkd
