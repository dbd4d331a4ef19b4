// The supervisor's side of the fork server: starting it, asking it for children and
// spares, making a spare a child, and retiring the server with its spares. The
// server's own side is in fork_server_process.cpp; see fork_server.hpp for why.
#include "supervisor/fork_server.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "supervisor/fork_server_protocol.hpp"
#include "supervisor/helper_process.hpp"
#include "util/log.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace preforkd {
namespace {

namespace protocol = fork_server_protocol;

// How long the supervisor waits for the server's answer before it forks by itself. The
// server answers in well under a millisecond; only a stopped or wedged server takes long.
constexpr int answer_timeout_ms = 5000;
// How long a retired server may take to finish what it was doing and exit by itself.
constexpr int retire_timeout_ms = 1000;

// The server and its spares are the supervisor's unreaped children: their pids cannot
// have gone to another process (reap_children forgets a spare as it reaps it).
void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

ForkServer::ForkServer(std::vector<SpawnPlan*> plans, std::span<const int> signals_to_reset,
                       std::span<const int> close_in_server)
    : plans_(std::move(plans)), signals_to_reset_(signals_to_reset.begin(), signals_to_reset.end()) {
  for (const SpawnPlan* plan : plans_) plan_ids_.push_back(plan->id);
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sockets) != 0)
    throw std::runtime_error(syscall_error("socketpair", "fork server", errno));
  UniqueFd ours(sockets[0]);
  UniqueFd theirs(sockets[1]);
  // The server keeps every signal blocked; its children reset them before they unblock.
  pid_t supervisor = ::getpid();
  pid_ = fork_helper_process("fork server");
  if (pid_ == 0) {
    // Its own name in ps, top and pstree; each child takes the supervisor's back.
    ::prctl(PR_GET_NAME, child_name_);
    ::prctl(PR_SET_NAME, process_name);
    ::close(ours.release());
    for (int fd : close_in_server) ::close(fd);
    serve(theirs.release(), supervisor);
  }
  // A pidfd: the server can be killed and reaped by this handle even if waitpid(-1)
  // already reaped it and its pid went to someone else.
  pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  requests_ = std::move(ours);
}

ForkServer::~ForkServer() {
  if (requests_ && pidfd_) {
    // The server exits on EOF once it is done with what it was doing, which may be the
    // fork of a spare: wait for that (briefly), so that every spare it made is known.
    ::shutdown(requests_.get(), SHUT_WR);
    pollfd exited{pidfd_.get(), POLLIN, 0};
    while (::poll(&exited, 1, retire_timeout_ms) < 0 && errno == EINTR) {
    }
    keep_replies_that_came();
  }
  requests_.reset();
  if (pidfd_) {
    // By its pidfd: reap_children may have reaped the server itself already.
    stop_now();
    siginfo_t info{};
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info,
                    WEXITED) != 0 &&
           errno == EINTR) {
    }
  }
  // A spare exits by itself once its status socket closes; killing and reaping it here
  // means nothing of this server outlives it. Only while its end of the socket is open:
  // that end closes as it dies, before it can be reaped, so its pid is still its own.
  // (One killed before its reply was read has been reaped as a stranger already.)
  for (Spare& spare : spares_) retire(spare);
}

void ForkServer::retire(Spare& spare) {
  pollfd peer{spare.status.get(), POLLRDHUP, 0};
  bool alive = ::poll(&peer, 1, 0) == 0;
  spare.status.reset();
  if (spare.pid > 0 && alive) kill_and_reap(spare.pid);
}

void ForkServer::move_to_reopened_log() {
  if (!requests_ || !protocol::send_follow_log(requests_.get())) return;  // a gone server: the next spawn finds out
  keep_replies_that_came();
  // A spare still being forked may have been forked before the request: it moves to the
  // new file when it becomes a child (place_child), as one made before USR1 does.
  std::vector<uint64_t> plans_to_spare;
  for (auto it = spares_.begin(); it != spares_.end();) {
    if (it->pid <= 0) {
      ++it;
      continue;
    }
    retire(*it);
    plans_to_spare.push_back(it->plan_id);
    it = spares_.erase(it);
  }
  for (uint64_t id : plans_to_spare)
    for (const SpawnPlan* plan : plans_)
      if (plan->id == id) ask_for_spare(*plan);
}

bool ForkServer::serves(const SpawnPlan& plan) const {
  return std::find(plan_ids_.begin(), plan_ids_.end(), plan.id) != plan_ids_.end();
}

bool ForkServer::forget_spare(pid_t pid) {
  keep_replies_that_came();  // it may have died before its reply was read
  auto it = std::find_if(spares_.begin(), spares_.end(), [&](const Spare& s) { return s.pid == pid; });
  if (it == spares_.end()) return false;
  spares_.erase(it);
  return true;
}

void ForkServer::append_fds(std::vector<int>& fds) const {
  if (requests_) fds.push_back(requests_.get());
  if (pidfd_) fds.push_back(pidfd_.get());
  for (const Spare& spare : spares_) fds.push_back(spare.status.get());
}

std::vector<ForkServer::Spare>::iterator ForkServer::spare_of(uint64_t plan_id) {
  return std::find_if(spares_.begin(), spares_.end(),
                      [&](const Spare& s) { return s.plan_id == plan_id && s.pid > 0; });
}

bool ForkServer::spare_asked(uint64_t plan_id) const {
  return std::any_of(spares_.begin(), spares_.end(),
                     [&](const Spare& s) { return s.plan_id == plan_id && s.pid == 0; });
}

void ForkServer::take_spare_reply(const protocol::Reply& reply) {
  auto asked = std::find_if(spares_.begin(), spares_.end(), [&](const Spare& s) {
    return s.plan_id == reply.plan_id && s.pid == 0;
  });
  if (asked == spares_.end()) return;
  if (reply.pid > 0) {
    asked->pid = reply.pid;
    return;
  }
  spares_.erase(asked);
  if (spares_work_) {
    spares_work_ = false;  // asking again would fail again at every spawn
    spdlog::warn("fork server pid={} cannot fork a spare: {}; children are forked on demand",
                 pid_, std::strerror(reply.error));
  }
}

void ForkServer::keep_replies_that_came() {
  protocol::Reply reply{};
  while (requests_ && protocol::receive_reply(requests_.get(), reply, 0))
    if (reply.kind == protocol::Request::spare) take_spare_reply(reply);
}

protocol::Reply ForkServer::wait_for_reply(bool child, uint64_t plan_id) {
  for (;;) {
    protocol::Reply reply{};
    if (!protocol::receive_reply(requests_.get(), reply, answer_timeout_ms))
      throw ForkServerGone("did not answer");
    if (reply.kind == protocol::Request::spare) take_spare_reply(reply);
    if (child ? reply.kind == protocol::Request::child : !spare_asked(plan_id)) return reply;
  }
}

void ForkServer::send_request(const protocol::Request& request, UniqueFd status_end) {
  int fd = status_end.get();
  if (!requests_ || !protocol::send_requests(requests_.get(), {&request, 1}, {&fd, 1}))
    throw ForkServerGone("does not take requests");
}

void ForkServer::ask_for_spare(const SpawnPlan& plan) {
  if (!spares_work_ || spare_of(plan.id) != spares_.end() || spare_asked(plan.id)) return;
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) return;
  UniqueFd ours(sockets[0]);
  try {
    send_request({protocol::Request::spare, plan.id, -1}, UniqueFd(sockets[1]));
  } catch (const ForkServerGone&) {
    return;  // the next spawn finds out
  }
  spares_.push_back(Spare{plan.id, 0, std::move(ours)});
}

void ForkServer::spawn(const SpawnPlan& plan, std::span<const int> cpus, SpawnedChildren& forked) {
  if (!requests_) throw ForkServerGone("does not take requests");
  keep_replies_that_came();
  if (spare_of(plan.id) == spares_.end() && spare_asked(plan.id)) wait_for_reply(false, plan.id);

  size_t done = 0;
  if (auto spare = spare_of(plan.id); spare != spares_.end() && !cpus.empty()) {
    Spare taken = std::move(*spare);
    spares_.erase(spare);
    protocol::Go go{cpus[0]};
    if (::send(taken.status.get(), &go, sizeof go, MSG_NOSIGNAL) == sizeof go) {
      forked.children.push_back(SpawnedChild{taken.pid, std::move(taken.status), cpus[0]});
      done = 1;
    }
    // Else the spare is gone (someone killed it); reap_children meets it as a stranger.
  }
  while (done < cpus.size() && forked.error.empty()) {
    size_t batch = std::min(cpus.size() - done, protocol::max_batch);
    fork_batch(plan, cpus.subspan(done, batch), forked);
    done += batch;
  }
  ask_for_spare(plan);
}

void ForkServer::fork_batch(const SpawnPlan& plan, std::span<const int> cpus,
                            SpawnedChildren& forked) {
  std::vector<protocol::Request> requests;
  std::vector<UniqueFd> ours, theirs;
  std::vector<int> their_fds;
  for (int cpu : cpus) {
    int sockets[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
      forked.error = syscall_error("socketpair", plan.pool, errno);
      break;
    }
    ours.emplace_back(sockets[0]);
    theirs.emplace_back(sockets[1]);
    their_fds.push_back(sockets[1]);
    requests.push_back({protocol::Request::child, plan.id, cpu});
  }
  if (requests.empty()) return;
  if (!protocol::send_requests(requests_.get(), requests, their_fds))
    throw ForkServerGone("does not take requests");
  // `theirs` stay open until the replies have come: the server has read them then, and
  // closing them is no close of a descriptor in flight (fork_server_protocol.hpp).
  size_t answered = 0;
  auto take = [&](const protocol::Reply& reply) {
    size_t i = answered++;
    if (reply.pid > 0)
      forked.children.push_back(SpawnedChild{reply.pid, std::move(ours[i]), requests[i].cpu});
    else if (forked.error.empty())
      forked.error = syscall_error("fork", plan.pool, reply.error);
  };
  try {
    while (answered < requests.size()) take(wait_for_reply(true, plan.id));
  } catch (const ForkServerGone&) {
    // Silent (stopped, wedged) in the middle of the batch, it may have forked more of it
    // than it answered for. Stopped for good, its replies sent so far are all there is:
    // each is a child of this batch, which must not run unknown to the supervisor.
    stop_now();
    protocol::Reply reply{};
    while (answered < requests.size() && protocol::receive_reply(requests_.get(), reply, 0)) {
      if (reply.kind == protocol::Request::spare) take_spare_reply(reply);
      else take(reply);
    }
    throw;
  }
}

void ForkServer::stop_now() {
  if (!pidfd_) return;
  ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  pollfd exited{pidfd_.get(), POLLIN, 0};
  while (::poll(&exited, 1, retire_timeout_ms) < 0 && errno == EINTR) {
  }
}

}  // namespace preforkd
