// Library pools: a C++ function that preforkd runs in each forked child, the way
// Parallel::Prefork's start(sub { ... }) does, for programs that link libpreforkd.
//
//   #include <preforkd/worker_function.hpp>
//   #include <preforkd/supervisor.hpp>
//
//   int main(int argc, char** argv) {
//     preforkd::register_worker_function("ticker", [](preforkd::ChildContext& ctx) {
//       ctx.ready();                       // tell the supervisor this child is up
//       while (!ctx.stop_requested()) {
//         ctx.busy("tick");
//         do_one_piece_of_work();
//         ctx.idle();
//         ctx.wait_for_stop(std::chrono::seconds(1));
//       }
//       return 0;                          // exit status of the child
//     });
//     return preforkd::run_main(argc, argv);  // same CLI as the preforkd binary
//   }
//
// and in the YAML:   pools: { ticker: { function: ticker, workers: 4 } }
//
// The child ends when the function returns: 0 is a clean end (replaced at once), 1-255
// a failure (replaced after err_respawn_interval), and anything else, like an exception
// (logged; exit status 70), a failure too (exit status 255). What it printed with stdio
// is flushed first. Processes it forks are its own to end: a stop signals only the
// child's own pid, and they are killed with its process group when it exits.
//
// Each child is a fork of preforkd's fork server, a copy of this program made when the
// pool's generation started (README, "Library pools"): its pthread_atfork child
// handlers ran there, not in each child. Set up per-process state (random seeds,
// connections) inside the function, or give the pool `fork_server: false`.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd {

// What a child knows about itself and how it talks back to the supervisor. Signals
// QUIT and HUP (graceful: finish the current piece of work) and TERM and INT (fast)
// only set a flag here, so the function decides where it is safe to stop; USR1 and USR2
// do nothing unless the function installs handlers of its own.
class ChildContext {
 public:
  virtual ~ChildContext() = default;
  virtual const std::string& pool() const = 0;
  virtual unsigned generation() const = 0;

  virtual bool stop_requested() const = 0;   // QUIT or TERM received
  virtual bool fast_stop_requested() const = 0;  // TERM received
  // Sleeps until a stop is requested or `timeout` passes; true when stop requested.
  virtual bool wait_for_stop(std::chrono::milliseconds timeout) = 0;

  // Scoreboard reports to the supervisor (cheap: one small write on a pipe).
  virtual void ready() = 0;
  virtual void busy(std::string_view what) = 0;
  virtual void idle() = 0;
};

using WorkerFunction = std::function<int(ChildContext&)>;

// Register before run_main / Supervisor::run. The YAML names it with `function: NAME`.
void register_worker_function(std::string name, WorkerFunction fn);
const WorkerFunction* find_worker_function(const std::string& name);
std::vector<std::string> registered_worker_functions();

}  // namespace preforkd
