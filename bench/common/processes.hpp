// The processes a driver starts. Each one is tracked by pid from its start to its reap,
// waited for with a deadline, stopped by pid (never by name), and dies with the driver:
// the parent-death signal, and kill_leftovers() on the way out or on a signal.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace bench {

// Everything this program started and has not reaped. A driver that forks a worker
// itself (no exec) adds the pid here, so that it is killed on the way out as well.
extern std::vector<pid_t> live_children;
void forget(pid_t pid);
bool is_live(pid_t pid);
// True when `pid`, still tracked, has exited since the last look: it is reaped and
// forgotten (a server that died at start, a daemon that gave up).
bool reap_if_exited(pid_t pid);

// How often wait_for() looks whether a child has exited, in ms: 2, as bench_jobs and
// bench_redis have always done; bench_postgres sets 1 (its figures were taken so).
extern int exit_poll_ms;

// How a child starts besides its argv: as another user (PostgreSQL refuses to run as
// root), and with which parent-death signal (QUIT makes the postmaster take its
// backends down with it; a KILLed postmaster would leave them behind).
struct SpawnAs {
  bool drop = false;  // switch to uid/gid
  uid_t uid = 0;
  gid_t gid = 0;
  int death_signal = SIGKILL;
};

// fork+exec (PATH searched), stdin/stdout/stderr from/to files ("" = /dev/null; output
// appended), env_extra ("NAME=value") added, in `cwd` when given; tracked. Dies if fork fails.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env_extra,
            const std::string& stdin_path, const std::string& stdout_path,
            const std::string& stderr_path, const std::string& cwd = "", const SpawnAs& as = {});

// Waits up to deadline_s for `pid`; true (and *status, if asked) once it exited and is reaped.
bool wait_for(pid_t pid, double deadline_s, int* status);
// Waits up to deadline_s for `pid`, KILLs it if it is still running then; true when it
// exited with status 0.
bool exited_ok(pid_t pid, double deadline_s);
// Graceful stop: `signo` to the pid, KILL after grace_s, reaped either way. Nothing is
// sent to a pid already reaped (it may belong to someone else by now).
void stop_process(pid_t pid, int signo, double grace_s);
// A setup step that must succeed in time (a loader, initdb, preforkctl): spawn + exited_ok.
bool run_quiet(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               const std::string& stdin_path, const std::string& out, const std::string& err,
               double deadline_s, const SpawnAs& as = {});
// KILL by pid everything still tracked, and reap it.
void kill_leftovers();
// On INT, TERM (run.sh's timeout) and HUP: kill_leftovers() and exit 130. SIGPIPE is
// ignored: a write to a peer that went away fails instead of killing the driver.
void install_signal_handlers();

}  // namespace bench
