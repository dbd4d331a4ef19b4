// Message and descriptor passing between the supervisor, the fork server and spares.
#include "supervisor/fork_server_protocol.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace preforkd::fork_server_protocol {
namespace {

// One buffer and room for a batch's descriptors. Not copyable: the header points into
// the object itself.
struct Message {
  Message(void* data, size_t size) : iov{data, size} {
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof control;
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  iovec iov;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_batch)] = {};
  msghdr header{};
};

}  // namespace

bool send_requests(int socket, std::span<const Request> requests, std::span<const int> status_fds) {
  if (requests.empty() || requests.size() > max_batch || status_fds.size() != requests.size())
    return false;
  Message message(const_cast<Request*>(requests.data()), requests.size_bytes());
  message.header.msg_controllen = CMSG_SPACE(status_fds.size_bytes());
  cmsghdr* rights = CMSG_FIRSTHDR(&message.header);
  rights->cmsg_level = SOL_SOCKET;
  rights->cmsg_type = SCM_RIGHTS;
  rights->cmsg_len = CMSG_LEN(status_fds.size_bytes());
  std::memcpy(CMSG_DATA(rights), status_fds.data(), status_fds.size_bytes());
  ssize_t sent;
  do sent = ::sendmsg(socket, &message.header, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  return sent == static_cast<ssize_t>(requests.size_bytes());
}

ssize_t receive_requests(int socket, Request* requests, int* status_fds, size_t& fds) {
  Message message(requests, sizeof(Request) * max_batch);
  ssize_t got;
  do got = ::recvmsg(socket, &message.header, MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  fds = 0;
  for (cmsghdr* rights = CMSG_FIRSTHDR(&message.header); rights;
       rights = CMSG_NXTHDR(&message.header, rights)) {
    if (rights->cmsg_level != SOL_SOCKET || rights->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (rights->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    count = std::min(count, max_batch - fds);
    std::memcpy(status_fds + fds, CMSG_DATA(rights), count * sizeof(int));
    fds += count;
  }
  if (got <= 0) return got;
  if (got % static_cast<ssize_t>(sizeof(Request)) != 0) {
    errno = EPROTO;
    return -1;
  }
  return got / static_cast<ssize_t>(sizeof(Request));
}

bool send_follow_log(int socket) {
  Request request{Request::follow_log, 0, -1};
  return ::send(socket, &request, sizeof request, MSG_NOSIGNAL | MSG_DONTWAIT) == sizeof request;
}

void send_reply(int socket, const Reply& reply) {
  [[maybe_unused]] ssize_t sent = ::send(socket, &reply, sizeof reply, MSG_NOSIGNAL);
}

bool receive_reply(int socket, Reply& reply, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    // Without a wait, no poll: this runs at every spawn.
    if (timeout_ms > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd ready{socket, POLLIN, 0};
      int polled = ::poll(&ready, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
      if (polled < 0 && errno == EINTR) continue;
      if (polled <= 0) return false;
    }
    ssize_t got = ::recv(socket, &reply, sizeof reply, MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) continue;
    return got == static_cast<ssize_t>(sizeof reply);
  }
}

}  // namespace preforkd::fork_server_protocol
