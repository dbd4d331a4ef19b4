// Message and descriptor passing between the supervisor, the fork server and spares.
#include "supervisor/fork_server_protocol.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

namespace preforkd::fork_server_protocol {
namespace {

// One buffer and room for max_fds descriptors. Not copyable: the header points into
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
  alignas(cmsghdr) char control[CMSG_SPACE(max_fds * sizeof(int))] = {};
  msghdr header{};
};

}  // namespace

bool send_message(int socket, const void* data, size_t size, std::span<const int> fds) {
  Message message(const_cast<void*>(data), size);
  if (fds.empty() || fds.size() > max_fds) {
    message.header.msg_control = nullptr;
    message.header.msg_controllen = 0;
  } else {
    message.header.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* rights = CMSG_FIRSTHDR(&message.header);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(rights), fds.data(), fds.size() * sizeof(int));
  }
  ssize_t sent;
  do sent = ::sendmsg(socket, &message.header, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  return sent == static_cast<ssize_t>(size);
}

ssize_t receive_message(int socket, void* data, size_t size, std::span<int> fds) {
  Message message(data, size);
  ssize_t got;
  do got = ::recvmsg(socket, &message.header, MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  std::fill(fds.begin(), fds.end(), -1);
  size_t next = 0;
  for (cmsghdr* rights = CMSG_FIRSTHDR(&message.header); rights;
       rights = CMSG_NXTHDR(&message.header, rights)) {
    if (rights->cmsg_level != SOL_SOCKET || rights->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (rights->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(rights) + i * sizeof(int), sizeof fd);
      if (next < fds.size()) fds[next++] = fd;
      else ::close(fd);  // more than asked for: not ours to keep
    }
  }
  return got;
}

bool receive_message_within(int socket, void* data, size_t size, std::span<int> fds,
                            int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd ready{socket, POLLIN, 0};
    int polled = ::poll(&ready, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (polled < 0 && errno == EINTR) continue;
    if (polled <= 0) return false;
    ssize_t got = receive_message(socket, data, size, fds);
    if (got < 0 && errno == EINTR) continue;
    if (got == static_cast<ssize_t>(size)) return true;
    for (int& fd : fds)
      if (fd >= 0) ::close(std::exchange(fd, -1));
    return false;
  }
}

}  // namespace preforkd::fork_server_protocol
