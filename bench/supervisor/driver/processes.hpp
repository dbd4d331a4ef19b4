// Starting what the bench measures (preforkd, Parallel::Prefork, the bare loop) as
// child processes of the bench, and stopping each one by its pid within a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace bench {

enum class Supervisor { preforkd, prefork };
enum class Children { in_process, exec };

struct Side {
  Supervisor supervisor;
  Children children;
  std::string label() const;
};

struct Paths {
  std::string library_pool;  // links preforkd_lib, registers the "bench" function
  std::string preforkd;      // the preforkd binary (command pools)
  std::string bench_child;   // the tiny exec'd child
  std::string bare_fork;     // the bare fork(+exec)+waitpid loop
  std::string peer_script;   // prefork_peer.pl
  std::string work_dir;      // temporary: configs, logs, the FIFO
  std::string fifo;
};

// One started process. The destructor stops it (TERM, then KILL after 10 s) and reaps
// whatever it left behind: the bench is a child subreaper, so orphans come back to it.
class Process {
 public:
  Process(pid_t pid, std::string name, std::string log) : pid_(pid), name_(std::move(name)),
      log_(std::move(log)) {}
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_; }
  void signal(int signo) const;
  // Sends TERM and waits for the exit; KILL after `grace`. Returns false if KILLed.
  bool stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // Waits for a process that ends by itself; KILLs it after `timeout`.
  bool wait_exit(std::chrono::milliseconds timeout);

 private:
  pid_t pid_;
  std::string name_;
  std::string log_;
  bool running_ = true;
};

// What starting a process takes, built before the clock of a cold start runs: its
// config written, its argv and environment in place.
struct Launch {
  std::string name;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string log;
};

// mode: exit | idle | work (see bench_child.c)
Launch prepare_supervisor(const Paths& paths, const Side& side, int workers,
                          const std::string& mode, int work_ms = 200);
Launch prepare_bare(const Paths& paths, bool exec, const std::vector<std::string>& args);
// Starts it; `launched_ns`, when given, gets the CLOCK_MONOTONIC stamp of the moment
// just before the process is created.
std::unique_ptr<Process> spawn(const Launch& launch, long long* launched_ns = nullptr);

std::unique_ptr<Process> start_supervisor(const Paths& paths, const Side& side, int workers,
                          const std::string& mode, int work_ms = 200);
std::unique_ptr<Process> start_bare(const Paths& paths, bool exec, const std::vector<std::string>& args);

// Kills (SIGKILL) and reaps every remaining child process of the bench.
void reap_leftovers();

struct ProcStat {
  double cpu_seconds = 0;  // utime + stime
  long rss_kib = 0;        // VmRSS
  long hwm_kib = 0;        // VmHWM
  double run_seconds = 0;  // /proc/PID/schedstat: time on a CPU, ns precision
};
ProcStat read_proc_stat(pid_t pid);

}  // namespace bench
