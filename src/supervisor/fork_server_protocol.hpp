// What the supervisor, its fork server and the server's spares say to each other over
// SEQPACKET socket pairs, and the descriptor passing (SCM_RIGHTS) that goes with it.
// Internal to src/supervisor/.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace preforkd::fork_server_protocol {

// Supervisor -> server.
struct Request {
  enum Kind : int { child = 1, spare = 2 };
  Kind kind;
  uint64_t plan_id;
  int cpu;  // child: where to pin it (-1: nowhere); comes with the child's status socket
};

// Server -> supervisor, one per request.
struct Reply {
  Request::Kind kind;
  uint64_t plan_id;
  pid_t pid;  // the new child or spare, -1 when the fork failed
  int error;  // errno of the failed fork
  // spare: comes with two descriptors, the spare's socket (the Go message goes there)
  // and its pidfd
};

// Supervisor -> spare: become the child of a request. Comes with its status socket.
struct Go {
  int cpu;
};

// The most descriptors a message carries.
constexpr size_t max_fds = 2;

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
