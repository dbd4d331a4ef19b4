// inotify-based change wait (see file_change_watch.hpp).
#include "util/file_change_watch.hpp"

#include <poll.h>
#include <sys/inotify.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

#include "util/log.hpp"

namespace preforkd {

FileChangeWatch::FileChangeWatch(const std::string& directory, std::string file_name)
    : inotify_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)), file_name_(std::move(file_name)) {
  const char* failed = nullptr;
  if (!inotify_) failed = "inotify_init1";
  else if (::inotify_add_watch(inotify_.get(), directory.c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0)
    failed = "inotify_add_watch";
  if (failed) {
    // Out of inotify instances or watches (fs.inotify.max_user_instances/_watches):
    // slower, but the jobs are still served.
    spdlog::warn("{}; looking for new jobs every {}ms instead of being woken (raise "
                 "fs.inotify.max_user_instances / max_user_watches)",
                 syscall_error(failed, directory, errno), poll_interval.count());
    inotify_.reset();
  }
}

void FileChangeWatch::drain() {
  alignas(inotify_event) char buffer[4096];
  changed_ = false;
  if (!inotify_) return;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buffer, sizeof buffer);
    if (n <= 0) return;
    for (char* p = buffer; p < buffer + n;) {
      auto* event = reinterpret_cast<inotify_event*>(p);
      if (event->len && file_name_ == event->name) changed_ = true;
      p += sizeof(inotify_event) + event->len;
    }
  }
}

bool FileChangeWatch::wait(std::chrono::milliseconds timeout, int extra_fd) {
  if (!inotify_) timeout = std::min(timeout, poll_interval);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {extra_fd, POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    int n = ::poll(fds, extra_fd >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
    if (n < 0 && errno != EINTR) return false;
    if (extra_fd >= 0 && (fds[1].revents & POLLIN)) return true;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      // Other files in the directory (the -shm, a journal) wake us too: only the
      // watched file counts.
      drain();
      if (changed_) return false;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
  }
}

}  // namespace preforkd
