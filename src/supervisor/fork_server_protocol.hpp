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

// The most descriptors a message carries.
constexpr size_t max_fds = 1;

// sendmsg of `size` bytes with `fds` attached. False when not all was sent.
bool send_message(int socket, const void* data, size_t size, std::span<const int> fds);

// recvmsg of one message into `data`, its descriptors (close-on-exec) into `fds`, -1 for
// each that did not come. Returns recvmsg's result: 0 at EOF.
ssize_t receive_message(int socket, void* data, size_t size, std::span<int> fds);

// receive_message after waiting up to `timeout_ms` for a message. False on time-out,
// EOF, or a message of another size.
bool receive_message_within(int socket, void* data, size_t size, std::span<int> fds,
                            int timeout_ms);

}  // namespace preforkd::fork_server_protocol
