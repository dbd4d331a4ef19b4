// The fork server: its start, its request loop, and the supervisor's side of a request.
// See fork_server.hpp for why it exists.
#include "supervisor/fork_server.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "util/log.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace preforkd {
namespace {

// How long the supervisor waits for the server's answer before it forks by itself. The
// server answers in well under a millisecond; only a stopped or wedged server takes long.
constexpr int answer_timeout_ms = 5000;

struct Request {
  uint64_t plan_id;
  int cpu;
};

struct Answer {
  pid_t pid;
  int error;
};

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

// One buffer and room for one descriptor: the message of both directions. Not copyable:
// the header points into the object itself.
struct MessageWithFd {
  MessageWithFd(void* data, size_t size) : iov{data, size} {
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof control;
  }
  MessageWithFd(const MessageWithFd&) = delete;
  MessageWithFd& operator=(const MessageWithFd&) = delete;

  iovec iov;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr header{};
};

bool send_with_fd(int socket, const void* data, size_t size, int fd) {
  MessageWithFd message(const_cast<void*>(data), size);
  cmsghdr* rights = CMSG_FIRSTHDR(&message.header);
  rights->cmsg_level = SOL_SOCKET;
  rights->cmsg_type = SCM_RIGHTS;
  rights->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(rights), &fd, sizeof fd);
  ssize_t sent;
  do sent = ::sendmsg(socket, &message.header, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  return sent == static_cast<ssize_t>(size);
}

// The request and the status socket that comes with it (-1 when none came).
ssize_t receive_with_fd(int socket, void* data, size_t size, int* fd) {
  MessageWithFd message(data, size);
  ssize_t got;
  do got = ::recvmsg(socket, &message.header, MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  *fd = -1;
  for (cmsghdr* rights = CMSG_FIRSTHDR(&message.header); rights;
       rights = CMSG_NXTHDR(&message.header, rights))
    if (rights->cmsg_level == SOL_SOCKET && rights->cmsg_type == SCM_RIGHTS)
      std::memcpy(fd, CMSG_DATA(rights), sizeof *fd);
  return got;
}

bool receive_answer(int socket, Answer& answer) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(answer_timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd ready{socket, POLLIN, 0};
    int polled = ::poll(&ready, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (polled < 0 && errno == EINTR) continue;
    if (polled <= 0) return false;
    ssize_t got = ::recv(socket, &answer, sizeof answer, 0);
    if (got < 0 && errno == EINTR) continue;
    return got == static_cast<ssize_t>(sizeof answer);
  }
}

}  // namespace

bool ForkServer::supported() { return thread_id_slot() != nullptr; }

ForkServer::ForkServer(std::vector<SpawnPlan*> plans, std::span<const int> signals_to_reset,
                       std::span<const int> close_in_server)
    : plans_(std::move(plans)), signals_to_reset_(signals_to_reset.begin(), signals_to_reset.end()) {
  for (const SpawnPlan* plan : plans_) plan_ids_.push_back(plan->id);
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sockets) != 0)
    throw std::runtime_error(syscall_error("socketpair", "fork server", errno));
  UniqueFd ours(sockets[0]);
  UniqueFd theirs(sockets[1]);
  // As in spawn_child: no signal reaches the supervisor's handlers in the server. The
  // server keeps them all blocked; its children reset them before they unblock.
  sigset_t all, previous;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, &previous);
  pid_t supervisor = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // Its own name in ps, top and pstree, first thing; each child takes the
    // supervisor's back.
    ::prctl(PR_GET_NAME, child_name_);
    ::prctl(PR_SET_NAME, process_name);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != supervisor) ::_exit(1);
    ::close(ours.release());
    for (int fd : close_in_server) ::close(fd);
    serve(theirs.release(), supervisor);
  }
  int fork_errno = errno;
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  if (pid_ < 0) throw std::runtime_error(syscall_error("fork", "fork server", fork_errno));
  // A pidfd: the server can be killed and reaped by this handle even if waitpid(-1)
  // already reaped it and its pid went to someone else.
  pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  requests_ = std::move(ours);
}

ForkServer::~ForkServer() {
  requests_.reset();
  if (!pidfd_) return;
  ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info,
                  WEXITED) != 0 &&
         errno == EINTR) {
  }
}

bool ForkServer::serves(const SpawnPlan& plan) const {
  return std::find(plan_ids_.begin(), plan_ids_.end(), plan.id) != plan_ids_.end();
}

SpawnedChild ForkServer::spawn(const SpawnPlan& plan) {
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0)
    throw std::runtime_error(syscall_error("socketpair", plan.pool, errno));
  UniqueFd parent_end(sockets[0]);
  UniqueFd child_end(sockets[1]);
  Request request{plan.id, plan.cpu};
  if (!requests_ || !send_with_fd(requests_.get(), &request, sizeof request, child_end.get()))
    throw ForkServerGone("does not take requests");
  child_end.reset();
  Answer answer{};
  if (!receive_answer(requests_.get(), answer)) throw ForkServerGone("did not answer");
  if (answer.pid <= 0) throw std::runtime_error(syscall_error("fork", plan.pool, answer.error));
  return SpawnedChild{answer.pid, std::move(parent_end)};
}

void ForkServer::serve(int requests, pid_t supervisor) {
  pid_t* tid_slot = thread_id_slot();
  // The kernel gives a new process no robust-mutex list; glibc's fork registers the
  // thread's again in the child, and so must a child of the raw clone below.
  void* robust_head = nullptr;
  size_t robust_length = 0;
  ::syscall(SYS_get_robust_list, 0, &robust_head, &robust_length);
  for (;;) {
    Request request{};
    int status_fd = -1;
    ssize_t got = receive_with_fd(requests, &request, sizeof request, &status_fd);
    if (got <= 0) ::_exit(0);  // the supervisor closed its end (or is gone)
    Answer answer{-1, EPROTO};
    SpawnPlan* plan = nullptr;
    for (SpawnPlan* known : plans_)
      if (known->id == request.plan_id) plan = known;
    if (got != static_cast<ssize_t>(sizeof request) || status_fd < 0) {
      answer.error = EPROTO;
    } else if (!plan) {
      answer.error = ENOENT;
    } else {
      plan->cpu = request.cpu;
      // CLONE_PARENT: the child's parent is the supervisor, and its exit signal the
      // server's own (SIGCHLD). CLONE_CHILD_SETTID: see find_thread_id_slot.
      pid_t pid = static_cast<pid_t>(::syscall(SYS_clone, CLONE_PARENT | CLONE_CHILD_SETTID | SIGCHLD,
                                               nullptr, nullptr, tid_slot, 0));
      if (pid == 0) {
        ::close(requests);
        ::prctl(PR_SET_NAME, child_name_);
        ::syscall(SYS_set_robust_list, robust_head, robust_length);
        become_child(*plan, supervisor, status_fd, signals_to_reset_, {});
      }
      answer = pid > 0 ? Answer{pid, 0} : Answer{-1, errno};
    }
    if (status_fd >= 0) ::close(status_fd);
    [[maybe_unused]] ssize_t sent = ::send(requests, &answer, sizeof answer, MSG_NOSIGNAL);
  }
}

}  // namespace preforkd
