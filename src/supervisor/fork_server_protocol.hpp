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

namespace preforkd::fork_server_protocol {

// Supervisor -> server.
// Both kinds come with the new process's end of its status socket.
struct Request {
  enum Kind : int { child = 1, spare = 2 };
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

// A request with the new process's end of its status socket (SCM_RIGHTS). False when
// not all was sent.
bool send_request(int socket, const Request& request, int status_fd);

// The next request and its descriptor (close-on-exec; -1 when none came). Returns
// recvmsg's result: 0 at EOF.
ssize_t receive_request(int socket, Request& request, int* status_fd);

void send_reply(int socket, const Reply& reply);

// The next reply, waiting up to `timeout_ms` (0: only one already there). False on
// time-out, EOF or a message of another size.
bool receive_reply(int socket, Reply& reply, int timeout_ms);

}  // namespace preforkd::fork_server_protocol
