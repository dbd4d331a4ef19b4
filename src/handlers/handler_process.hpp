// A handler's child process as the worker child runs it: fork+exec (own process group,
// PR_SET_PDEATHSIG), pipes for stdin/stdout/stderr, output forwarded to the log line by
// line, and one wait loop that also keeps the lease alive, enforces the job's deadline
// and notices a fast stop.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "handlers/handler.hpp"
#include "util/unique_fd.hpp"

namespace preforkd {

class HandlerProcess {
 public:
  // Starts argv with `extra_env` added to the worker's environment. `capture_stdout`:
  // stdout lines are returned by wait() (persistent protocol) instead of logged.
  // Throws std::runtime_error when pipe or fork fail; exec failure shows as exit 127.
  // `max_output_logged`: bytes of output logged per job (see set_log_prefix), 0 for no
  // limit; past it output is still read, counted and dropped.
  HandlerProcess(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                 bool capture_stdout, std::string log_prefix, size_t max_output_logged = 0);
  ~HandlerProcess();  // KILLs the process group and reaps it if still running
  HandlerProcess(const HandlerProcess&) = delete;
  HandlerProcess& operator=(const HandlerProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() { return !reap(false); }  // reaps it if it has exited
  // Seen to have exited (no system call: a wait() or reap() found out).
  bool known_exited() const { return wait_status_.has_value(); }
  std::optional<int> wait_status() const { return wait_status_; }

  // Queues `data` for stdin and writes what the pipe takes now; wait() writes the rest
  // as the process reads, so a payload larger than the pipe never blocks the worker
  // (its timeout, lease heartbeat and stop signals go on). False when the process
  // closed stdin. `close_after` closes stdin once all is written, so the process sees
  // EOF (exec handlers read the payload to EOF).
  bool write_stdin(const std::string& data, bool close_after);
  // Bytes given to write_stdin that the process has not read: still in the pipe or not
  // yet written to it. 0 once stdin is closed (nothing known).
  size_t unread_stdin_bytes() const;

  // line_too_long: with `capture_stdout`, a stdout line grew past max_line_bytes; what
  // was read of it is dropped.
  enum class Event { exited, line, line_too_long, timed_out, fast_stop };
  static constexpr size_t max_line_bytes = 16 << 20;
  // Waits for the process to exit (and its output to end) or, when `want_line`, for a
  // stdout line, until `deadline` (none when nullopt). Heartbeats on the way.
  Event wait(bool want_line, std::optional<std::chrono::steady_clock::time_point> deadline,
             const RunControl& control, std::string* line);

  // Closes stdin (what was queued for it is dropped) and waits up to `grace` for the
  // process to exit, forwarding its output; true when it did.
  bool close_stdin_and_wait(std::chrono::milliseconds grace);
  // TERM to the process group, KILL after control.grace; reaps it. Meanwhile its output
  // is forwarded and control.heartbeat keeps the lease.
  void stop(const RunControl& control);
  std::string describe_exit() const;
  // What each logged line of its output starts with from now on (a persistent
  // handler's names the job it is running). Output already in the pipes is logged first,
  // with the prefix it was written under; captured lines among it are logged too, as no
  // answer to what comes next. Starts a new budget of logged output, after a line on
  // what the last one dropped.
  void set_log_prefix(std::string prefix);
  // Logs one line of the handler's output as "{prefix}: {text}" (`text` may carry its
  // own preamble) while the budget lasts; past it, counts it.
  void log_output(std::string_view text);
  // Says (once) how much output the budget dropped, and starts a new one.
  void end_output_budget();

 private:
  bool reap(bool block);
  // Writes queued stdin data until the pipe is full; false when the process closed it.
  bool flush_stdin();
  void forward_output(int fd, std::string& buffer, bool to_line_queue);
  void flush_partial();
  // With `capture_stdout`: a last line the process left without its newline is still a
  // line (an answer written with print, then exit).
  void end_of_stdout();
  // Captured lines nobody asked for (after an answer, during a stop): logged, not lost.
  void log_leftover_lines();

  pid_t pid_ = -1;
  UniqueFd stdin_, stdout_, stderr_, pidfd_;
  bool capture_stdout_;
  std::string log_prefix_;
  std::string stdin_pending_;
  bool close_stdin_when_written_ = false;
  std::string out_buffer_, err_buffer_;
  std::vector<std::string> lines_;
  size_t max_output_logged_;
  size_t output_logged_ = 0, output_dropped_ = 0;
  bool line_too_long_ = false;
  std::optional<int> wait_status_;
};

}  // namespace preforkd
