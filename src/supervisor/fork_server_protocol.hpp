// What the supervisor, its fork server and the server's spares say to each other, and
// the descriptor passing (SCM_RIGHTS) that goes with it. Internal to src/supervisor/.
//
// A descriptor stays in flight only for the moment the server takes to read it: while
// any is in flight anywhere, Linux (6.x) queues its unix-socket garbage collector on
// every close of a unix socket, a kernel thread woken per child.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace preforkd::fork_server_protocol {

// Supervisor -> server.
// A child or a spare comes with the new process's end of its status socket. follow_log
// comes alone, without one, and is not answered: the log file was reopened (USR1), and
// the server opens it afresh for what it forks from now on.
struct Request {
  enum Kind : int { child = 1, spare = 2, follow_log = 3 };
  Kind kind;
  uint64_t plan_id;
  int cpu;  // child: where to pin it (-1: nowhere)
};

// Server -> supervisor, one per request, in the order of the requests.
struct Reply {
  Request::Kind kind;
  uint64_t plan_id;
  pid_t pid;  // the new child or spare, -1 when the fork failed
  int error;  // errno of the failed fork
};

// Supervisor -> spare, the first bytes on its status socket: become the pool's child.
// EOF instead: exit, nothing was started.
struct Go {
  int cpu;
};

// The most requests one message carries: a cold start of N children is N / max_batch
// round trips, and the server forks one batch back to back without waiting to be
// woken. (SCM_RIGHTS takes up to 253 descriptors a message.)
constexpr size_t max_batch = 64;

// Requests in one message, each with the new process's end of its status socket
// (SCM_RIGHTS), in the same order. At most max_batch. False when not all was sent.
bool send_requests(int socket, std::span<const Request> requests, std::span<const int> status_fds);

// The next message's requests (up to max_batch) and descriptors (close-on-exec). Sets
// `fds` to how many descriptors came. Returns how many requests came, 0 at EOF, -1 on
// an error (errno EPROTO: a message that is not a whole number of requests).
ssize_t receive_requests(int socket, Request* requests, int* status_fds, size_t& fds);

// A follow_log request, alone. False when it could not be sent.
bool send_follow_log(int socket);

void send_reply(int socket, const Reply& reply);

// The next reply, waiting up to `timeout_ms` (0: only one already there). False on
// time-out, EOF or a message of another size.
bool receive_reply(int socket, Reply& reply, int timeout_ms);

}  // namespace preforkd::fork_server_protocol
