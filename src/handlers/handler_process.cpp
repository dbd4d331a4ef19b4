// fork+exec of a handler and the wait loop around it (see handler_process.hpp).
#include "handlers/handler_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <stdexcept>

#include "supervisor/child.hpp"
#include "util/json_text.hpp"
#include "util/log.hpp"

extern char** environ;

namespace preforkd {
namespace {

using Clock = std::chrono::steady_clock;

// A handler's output as one readable log line: control bytes (a colour escape, a bell,
// a carriage return that would hide the line's prefix on a terminal) written as \xHH,
// tabs kept, bytes that are not UTF-8 replaced by U+FFFD (grep took the whole log for
// binary).
std::string printable_output(std::string_view text) {
  std::string valid = with_valid_utf8(text);
  std::string out;
  out.reserve(valid.size());
  for (unsigned char c : valid) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

UniqueFd open_pidfd(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> merged;
  auto add = [&](std::string_view entry) {
    auto eq = entry.find('=');
    if (eq != std::string_view::npos)
      merged[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
  };
  for (char** entry = environ; entry && *entry; ++entry) add(*entry);
  for (const auto& entry : extra) add(entry);
  std::vector<std::string> env;
  env.reserve(merged.size());
  for (auto& [name, value] : merged) env.push_back(name + "=" + value);
  return env;
}

// What the handler child needs between clone and exec: system calls only (it runs on
// the worker's memory until execve), no allocation, no locks.
struct HandlerChild {
  pid_t parent;
  int stdin_fd, stdout_fd, stderr_fd;
  int exec_error_fd;  // close-on-exec: EOF when execve worked, its errno when it failed
  char* const* argv;
  char* const* envp;
};

int handler_child_main(void* arg) {
  const auto* child = static_cast<const HandlerChild*>(arg);
  // Dies with its worker: a killed worker must not leave a job running unobserved.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != child->parent) ::_exit(1);
  ::setpgid(0, 0);  // a timeout's TERM/KILL reaches the handler's own children too
  ::dup2(child->stdin_fd, 0);
  ::dup2(child->stdout_fd, 1);
  ::dup2(child->stderr_fd, 2);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int signo = 1; signo < NSIG; ++signo) ::sigaction(signo, &default_action, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(child->argv[0], child->argv, child->envp);
  int error = errno;
  [[maybe_unused]] ssize_t n = ::write(child->exec_error_fd, &error, sizeof error);
  ::_exit(127);
}

}  // namespace

HandlerProcess::HandlerProcess(const std::vector<std::string>& argv,
                               const std::vector<std::string>& extra_env, bool capture_stdout,
                               std::string log_prefix, size_t max_output_logged)
    : capture_stdout_(capture_stdout),
      log_prefix_(std::move(log_prefix)),
      max_output_logged_(max_output_logged) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error(syscall_error("pipe2", "stdin", errno));
  UniqueFd in_read(in[0]), in_write(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error(syscall_error("pipe2", "stdout", errno));
  UniqueFd out_read(out[0]), out_write(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error(syscall_error("pipe2", "stderr", errno));
  UniqueFd err_read(err[0]), err_write(err[1]);
  int exec_error[2];
  if (::pipe2(exec_error, O_CLOEXEC) != 0) throw std::runtime_error(syscall_error("pipe2", "exec", errno));
  UniqueFd exec_error_read(exec_error[0]), exec_error_write(exec_error[1]);

  std::vector<std::string> env = merged_environment(extra_env);
  std::vector<char*> argv_ptrs, env_ptrs;
  for (const auto& arg : argv) argv_ptrs.push_back(const_cast<char*>(arg.c_str()));
  argv_ptrs.push_back(nullptr);
  for (const auto& entry : env) env_ptrs.push_back(const_cast<char*>(entry.c_str()));
  env_ptrs.push_back(nullptr);

  HandlerChild child{::getpid(),          in_read.get(),    out_write.get(), err_write.get(),
                     exec_error_write.get(), argv_ptrs.data(), env_ptrs.data()};
  sigset_t all, previous;
  sigfillset(&all);
  // Blocked across fork so the worker's QUIT/TERM handlers never run in the handler.
  ::sigprocmask(SIG_BLOCK, &all, &previous);
#if defined(__SANITIZE_ADDRESS__)
  // ASan cannot follow a child running on a stack of ours in our memory: fork there.
  pid_ = ::fork();
  if (pid_ == 0) handler_child_main(&child);
#else
  // CLONE_VM|CLONE_VFORK, as posix_spawn does: a worker with a big heap (an in-process
  // cache, SQLite's page cache) pays no page-table copy per job; the worker waits
  // (microseconds) until the handler has exec'd or failed.
  std::vector<char> stack(64 * 1024);
  pid_ = ::clone(handler_child_main, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD,
                 &child);
#endif
  int fork_errno = errno;
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  if (pid_ < 0) throw std::runtime_error(syscall_error("fork", argv.front(), fork_errno));
  // The handler could not be started (a deploy removed it, or its mode): not a failure
  // of the job, which must not be charged for it. Reaped here; the caller gives the job
  // back, as for a failed fork.
  exec_error_write.reset();
  int exec_errno = 0;
  ssize_t got;
  do got = ::read(exec_error_read.get(), &exec_errno, sizeof exec_errno);
  while (got < 0 && errno == EINTR);
  if (got == sizeof exec_errno) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    throw std::runtime_error(syscall_error("execve", argv.front(), exec_errno));
  }
  stdin_ = std::move(in_write);
  stdout_ = std::move(out_read);
  stderr_ = std::move(err_read);
  pidfd_ = open_pidfd(pid_);
  ::fcntl(stdin_.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(stdout_.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(stderr_.get(), F_SETFL, O_NONBLOCK);
}

HandlerProcess::~HandlerProcess() {
  if (running()) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    reap(true);
  }
  end_output_budget();
}

bool HandlerProcess::write_stdin(const std::string& data, bool close_after) {
  stdin_pending_ += data;
  close_stdin_when_written_ = close_after;
  return flush_stdin();
}

size_t HandlerProcess::unread_stdin_bytes() const {
  if (!stdin_) return 0;
  int in_pipe = 0;  // FIONREAD on a pipe counts its buffered bytes, from either end
  if (::ioctl(stdin_.get(), FIONREAD, &in_pipe) != 0) return 0;
  return static_cast<size_t>(in_pipe) + stdin_pending_.size();
}

bool HandlerProcess::flush_stdin() {
  while (stdin_ && !stdin_pending_.empty()) {
    ssize_t n = ::write(stdin_.get(), stdin_pending_.data(), stdin_pending_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // the pipe is full
    if (n <= 0) {  // EPIPE (SIGPIPE is ignored in workers): it closed stdin or died
      stdin_pending_.clear();
      stdin_.reset();
      return false;
    }
    stdin_pending_.erase(0, static_cast<size_t>(n));
  }
  if (stdin_pending_.empty() && close_stdin_when_written_) stdin_.reset();
  return true;
}

bool HandlerProcess::reap(bool block) {
  if (wait_status_) return true;
  int status = 0;
  pid_t r;
  do r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == pid_) wait_status_ = status;
  return wait_status_.has_value();
}

void HandlerProcess::forward_output(int fd, std::string& buffer, bool to_line_queue) {
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        if (fd == stdout_.get()) {
          stdout_.reset();  // EOF
          end_of_stdout();
        } else {
          stderr_.reset();
        }
      }
      break;
    }
    buffer.append(chunk, static_cast<size_t>(n));
    bool drained = static_cast<size_t>(n) < sizeof chunk;  // poll() tells when there is more
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (to_line_queue) lines_.push_back(std::move(line));
      else log_output(line);
    }
    // A runaway line without newline: log it in pieces rather than grow without bound;
    // one meant as an answer is dropped past max_line_bytes, and wait() says so.
    if (buffer.size() > 65536 && !to_line_queue) {
      log_output(buffer);
      buffer.clear();
    } else if (buffer.size() > max_line_bytes && to_line_queue) {
      line_too_long_ = true;
      buffer.clear();
    }
    if (drained) break;
  }
}

void HandlerProcess::set_log_prefix(std::string prefix) {
  // Twice per job of a persistent handler: one poll that does not wait, and a read only
  // from a pipe that has something.
  pollfd fds[2] = {{stdout_.get(), POLLIN, 0}, {stderr_.get(), POLLIN, 0}};
  if (::poll(fds, 2, 0) > 0) {
    if (fds[0].revents) forward_output(stdout_.get(), out_buffer_, capture_stdout_);
    if (fds[1].revents) forward_output(stderr_.get(), err_buffer_, false);
  }
  log_leftover_lines();
  end_output_budget();
  log_prefix_ = std::move(prefix);
}

void HandlerProcess::end_of_stdout() {
  if (!capture_stdout_ || out_buffer_.empty()) return;
  lines_.push_back(std::move(out_buffer_));
  out_buffer_.clear();
}

void HandlerProcess::log_leftover_lines() {
  for (const auto& line : lines_) log_output(line);
  lines_.clear();
}

void HandlerProcess::log_output(std::string_view text) {
  if (max_output_logged_ > 0 && output_logged_ + text.size() > max_output_logged_) {
    output_dropped_ += text.size();
    output_logged_ = max_output_logged_;  // nothing more this job, not even a short line
    return;
  }
  output_logged_ += text.size();
  spdlog::info("{}: {}", log_prefix_, printable_output(text));
}

void HandlerProcess::end_output_budget() {
  if (output_dropped_ > 0)
    spdlog::warn("{}: {} more byte(s) of handler output not logged (max_output_logged: {} "
                 "byte(s) per job)",
                 log_prefix_, output_dropped_, max_output_logged_);
  output_logged_ = output_dropped_ = 0;
}

void HandlerProcess::flush_partial() {
  if (!err_buffer_.empty()) log_output(err_buffer_);
  if (!out_buffer_.empty() && !capture_stdout_) log_output(out_buffer_);
  err_buffer_.clear();
  if (!capture_stdout_) out_buffer_.clear();
}

HandlerProcess::Event HandlerProcess::wait(bool want_line,
                                           std::optional<Clock::time_point> deadline,
                                           const RunControl& control, std::string* line) {
  auto next_heartbeat = Clock::now() + control.heartbeat_every;
  for (;;) {
    if (want_line && !lines_.empty()) {
      *line = std::move(lines_.front());
      lines_.erase(lines_.begin());
      return Event::line;
    }
    if (want_line && line_too_long_) {
      line_too_long_ = false;
      return Event::line_too_long;
    }
    if (wait_status_ && !stdout_ && !stderr_) {
      flush_partial();
      return Event::exited;
    }
    auto now = Clock::now();
    if (deadline && now >= *deadline) return Event::timed_out;
    if (control.heartbeat && now >= next_heartbeat) {
      control.heartbeat();
      next_heartbeat = now + control.heartbeat_every;
    }
    auto until = next_heartbeat;
    if (deadline) until = std::min(until, *deadline);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
    pollfd fds[5] = {{stdout_.get(), POLLIN, 0},
                     {stderr_.get(), POLLIN, 0},
                     {wait_status_ ? -1 : pidfd_.get(), POLLIN, 0},
                     {control.stop_fd, POLLIN, 0},
                     {stdin_pending_.empty() ? -1 : stdin_.get(), POLLOUT, 0}};
    // A process that exited but left a grandchild holding the pipes: stop waiting on
    // the pipes shortly after the exit.
    int n = ::poll(fds, 5, static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX)));
    if (n < 0 && errno != EINTR) throw std::runtime_error(syscall_error("poll", "handler", errno));
    if (n <= 0) continue;
    if (fds[4].revents) flush_stdin();  // POLLERR: it closed stdin; flush_stdin sees EPIPE
    if (fds[0].revents) forward_output(stdout_.get(), out_buffer_, capture_stdout_);
    if (fds[1].revents) forward_output(stderr_.get(), err_buffer_, false);
    if (fds[2].revents) {
      reap(true);
      // Drain what is already in the pipes, then stop listening to them: a daemonised
      // grandchild may keep them open forever.
      if (stdout_) forward_output(stdout_.get(), out_buffer_, capture_stdout_);
      if (stderr_) forward_output(stderr_.get(), err_buffer_, false);
      end_of_stdout();
      if (!want_line || lines_.empty()) {
        stdout_.reset();
        stderr_.reset();
      }
    }
    if (fds[3].revents & POLLIN) {
      char drain[64];
      while (::read(control.stop_fd, drain, sizeof drain) > 0) {
      }
      if (control.fast_stop && control.fast_stop()) return Event::fast_stop;
    }
  }
}

bool HandlerProcess::close_stdin_and_wait(std::chrono::milliseconds grace) {
  stdin_pending_.clear();
  stdin_.reset();
  RunControl quiet;  // no heartbeat (no job), no stop signals
  bool exited = wait(false, Clock::now() + grace, quiet, nullptr) == Event::exited;
  log_leftover_lines();
  return exited;
}

void HandlerProcess::stop(const RunControl& control) {
  if (!running()) return;
  ::kill(-pid_, SIGTERM);
  ::kill(pid_, SIGTERM);
  // Until it exits the job is still its own: its output is logged as it comes (a
  // handler that writes while it cleans up would block on a full pipe and be KILLed),
  // and the lease is kept (else another worker would run the job beside it). Only the
  // stop signals are not listened to: this is the stop.
  RunControl grace_period = control;
  grace_period.stop_fd = -1;
  grace_period.fast_stop = nullptr;
  const auto deadline = Clock::now() + control.grace;
  for (;;) {
    Event event = wait(false, deadline, grace_period, nullptr);
    if (event == Event::exited) break;
    if (event == Event::timed_out) {
      spdlog::warn("{}: still running {}ms after TERM: sending KILL", log_prefix_, control.grace.count());
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      reap(true);
      break;
    }
  }
  ::kill(-pid_, SIGKILL);  // whatever the handler left behind in its group
  if (stdout_) forward_output(stdout_.get(), out_buffer_, capture_stdout_);
  if (stderr_) forward_output(stderr_.get(), err_buffer_, false);
  end_of_stdout();
  log_leftover_lines();  // answers to a job that is over, said too late: logged
  flush_partial();
}

std::string HandlerProcess::describe_exit() const {
  return wait_status_ ? preforkd::describe_exit(*wait_status_) : "still running";
}

}  // namespace preforkd
