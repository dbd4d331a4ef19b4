// The fork server's own side: its request loop, the raw clone of a child or a spare, and
// what a spare does until the supervisor makes it a child. See fork_server.hpp.
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "supervisor/fork_server.hpp"
#include "supervisor/fork_server_protocol.hpp"
#include "util/log.hpp"
#include "worker/child_context.hpp"

namespace preforkd {
namespace {

namespace protocol = fork_server_protocol;

// glibc keeps each thread's kernel id in its thread descriptor and uses it for the
// calls that name pthread_self() (pthread_setname_np, pthread_setaffinity_np, ...).
// fork() has the kernel write the new id there (CLONE_CHILD_SETTID); the server's raw
// clone must do the same, or a child's pthread_self() calls would act on the server.
// The field's offset is not public: find the word that holds gettid() and confirm it
// by changing it and reading it back through pthread_getcpuclockid(), which derives
// its answer from that field. Null when no single word passes.
pid_t* find_thread_id_slot() {
  auto* self = reinterpret_cast<pid_t*>(::pthread_self());
  pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  sigset_t all, previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &previous);  // no handler may see a changed id
  pid_t* found = nullptr;
  int matches = 0;
  for (int i = 0; i < 256; ++i) {  // the field is in the descriptor's first kilobyte
    volatile pid_t* word = self + i;
    if (*word != tid) continue;
    clockid_t before = 0, during = 0;
    ::pthread_getcpuclockid(::pthread_self(), &before);
    *word = tid + 1;
    ::pthread_getcpuclockid(::pthread_self(), &during);
    *word = tid;
    if (during != before) {
      found = self + i;
      ++matches;
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return matches == 1 ? found : nullptr;
}

pid_t* thread_id_slot() {
  static pid_t* slot = find_thread_id_slot();
  return slot;
}

}  // namespace

bool ForkServer::supported() { return thread_id_slot() != nullptr; }

void ForkServer::serve(int requests, pid_t supervisor) {
  requests_fd_ = requests;
  supervisor_ = supervisor;
  // The kernel gives a new process no robust-mutex list; glibc's fork registers the
  // thread's again in the child, and so must a child of the raw clone.
  ::syscall(SYS_get_robust_list, 0, &robust_head_, &robust_length_);
  protocol::Request requests_in[protocol::max_batch];
  int status_fds[protocol::max_batch];
  for (;;) {
    size_t fds = 0;
    ssize_t got = protocol::receive_requests(requests, requests_in, status_fds, fds);
    if (got == 0) ::_exit(0);  // the supervisor closed its end (or is gone)
    if (got < 0 && errno != EPROTO) ::_exit(0);  // the socket itself failed
    follow_log_reopen();  // what it clones from now on has the log file of the last USR1
    // One reply per request, in order; a request without its descriptor is refused.
    for (ssize_t i = 0; i < got; ++i) {
      const protocol::Request& request = requests_in[i];
      if (request.kind == protocol::Request::follow_log && got == 1 && fds == 0) break;  // followed above
      int status_fd = static_cast<size_t>(i) < fds ? status_fds[i] : -1;
      SpawnPlan* plan = nullptr;
      for (SpawnPlan* known : plans_)
        if (known->id == request.plan_id) plan = known;
      bool well_formed = status_fd >= 0 && (request.kind == protocol::Request::spare ||
                                            request.kind == protocol::Request::child);
      pid_t pid = -1;
      int error = well_formed ? ENOENT : EPROTO;
      if (well_formed && plan) {
        bool spare = request.kind == protocol::Request::spare;
        pid = clone_child();
        if (pid == 0) {
          for (size_t other = 0; other < fds; ++other)
            if (status_fds[other] >= 0 && status_fds[other] != status_fd) ::close(status_fds[other]);
          if (spare) wait_as_spare(*plan, status_fd);
          run_as_child(*plan, request.cpu, status_fd);
        }
        error = pid > 0 ? 0 : errno;
      }
      if (status_fd >= 0) ::close(status_fd);
      status_fds[i] = -1;
      protocol::send_reply(requests, {request.kind, request.plan_id, pid > 0 ? pid : -1, error});
    }
    // Descriptors beyond the requests (a malformed message) are not kept.
    for (size_t i = static_cast<size_t>(std::max<ssize_t>(got, 0)); i < fds; ++i)
      ::close(status_fds[i]);
  }
}

pid_t ForkServer::clone_child() {
  // CLONE_PARENT: the child's parent is the supervisor, and its exit signal the server's
  // own (SIGCHLD). CLONE_CHILD_SETTID: see find_thread_id_slot.
  pid_t pid = static_cast<pid_t>(::syscall(SYS_clone, CLONE_PARENT | CLONE_CHILD_SETTID | SIGCHLD,
                                           nullptr, nullptr, thread_id_slot(), 0));
  if (pid == 0) {
    ::syscall(SYS_set_robust_list, robust_head_, robust_length_);
    ::close(requests_fd_);
  }
  return pid;
}

void ForkServer::wait_as_spare(const SpawnPlan& plan, int status_fd) {
  // All that depends neither on the moment nor on the CPU is done before the wait, off
  // the path of the respawn that will use this spare. Its own process group comes first
  // (a signal to preforkd's group, Ctrl-Z in a terminal, must not stay pending in what
  // becomes a child), then its name: a process named as a spare is out of that group.
  prepare_child(supervisor_, signals_to_reset_, {});
  ::prctl(PR_SET_NAME, spare_name);
  enter_function_environment(plan);
  ForkedChildContext context(plan.pool, plan.generation, UniqueFd(status_fd));
  protocol::Go go{};
  size_t got = 0;
  while (got < sizeof go) {
    ssize_t n = ::read(status_fd, reinterpret_cast<char*>(&go) + got, sizeof go - got);
    if (n < 0 && errno == EINTR) continue;
    // EOF: the supervisor retired this spare. Nothing was started, nothing is lost.
    if (n <= 0) ::_exit(0);
    got += static_cast<size_t>(n);
  }
  ::prctl(PR_SET_NAME, child_name_);
  place_child(plan, go.cpu, supervisor_, status_fd);
  run_function(plan, supervisor_, context);
}

void ForkServer::run_as_child(const SpawnPlan& plan, int cpu, int status_fd) {
  ::prctl(PR_SET_NAME, child_name_);
  prepare_child(supervisor_, signals_to_reset_, {});
  start_child(plan, cpu, supervisor_, status_fd);
}

}  // namespace preforkd
