// ForkedChildContext: signal flags via a self-pipe, reports over the status socket.
#include "worker/child_context.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>

#include "supervisor/status_report.hpp"

namespace preforkd {
namespace {

volatile sig_atomic_t quit_flag = 0;
volatile sig_atomic_t term_flag = 0;
int stop_pipe[2] = {-1, -1};

void wake_stop_pipe() {
  char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_pipe[1], &byte, 1);
}

void on_stop_signal(int signo) {
  int saved = errno;
  if (signo == SIGQUIT || signo == SIGHUP) quit_flag = 1;
  else term_flag = 1;
  // Before the pipe exists nobody can be waiting on it: the flag is enough.
  if (stop_pipe[1] >= 0) wake_stop_pipe();
  errno = saved;
}

// The pipe is made when a child first waits (stop_fd, wait_for_stop), not at fork: a
// child that never waits (one that exits at once, a short-lived function) is spared
// the system call and two descriptors. pipe2 stores both ends before it returns to
// user space, so the handler sees either no pipe or a whole one.
int ensure_stop_pipe() {
  if (stop_pipe[0] < 0 && ::pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) == 0 &&
      (quit_flag || term_flag))
    wake_stop_pipe();  // a stop that arrived before the pipe existed
  return stop_pipe[0];
}

}  // namespace

ForkedChildContext::ForkedChildContext(std::string pool, unsigned generation, UniqueFd status_fd)
    : pool_(std::move(pool)), generation_(generation), status_fd_(std::move(status_fd)) {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  // A forked child bears the supervisor's name, so `killall -HUP preforkd` or the
  // logrotate idiom `killall -USR1 preforkd` reaches it too, and the default action
  // ended it in the middle of its work. HUP asks it to finish, as the supervisor's
  // forwarded HUP (a QUIT) does; USR1 (its log follows a reopen without a signal) and
  // USR2 do nothing. A handler that does nothing rather than SIG_IGN: what the child
  // execs gets the default back.
  for (int signo : {SIGQUIT, SIGTERM, SIGINT, SIGHUP}) ::sigaction(signo, &action, nullptr);
  action.sa_handler = [](int) {};
  for (int signo : {SIGUSR1, SIGUSR2}) ::sigaction(signo, &action, nullptr);
}

bool ForkedChildContext::stop_requested() const { return quit_flag || term_flag; }
bool ForkedChildContext::fast_stop_requested() const { return term_flag; }
int ForkedChildContext::stop_fd() { return ensure_stop_pipe(); }

bool ForkedChildContext::wait_for_stop(std::chrono::milliseconds timeout) {
  int fd = ensure_stop_pipe();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!stop_requested()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fd, POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
  }
  return stop_requested();
}

void ForkedChildContext::report(const std::string& line) {
  if (!status_fd_) return;
  // MSG_NOSIGNAL: a supervisor that went away must not kill us with SIGPIPE here;
  // PR_SET_PDEATHSIG takes care of that.
  [[maybe_unused]] ssize_t n = ::send(status_fd_.get(), line.data(), line.size(), MSG_NOSIGNAL);
}

void ForkedChildContext::ready() { report(encode_status({StatusReport::Kind::ready, {}})); }
void ForkedChildContext::busy(std::string_view what) {
  report(encode_status({StatusReport::Kind::busy, std::string(what)}));
}
void ForkedChildContext::idle() { report(encode_status({StatusReport::Kind::idle, {}})); }
void ForkedChildContext::done() { report(encode_status({StatusReport::Kind::done, {}})); }
void ForkedChildContext::idle_after(unsigned jobs) {
  report(encode_status({StatusReport::Kind::idle, std::to_string(jobs)}));
}

}  // namespace preforkd
