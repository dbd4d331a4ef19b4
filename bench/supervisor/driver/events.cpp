// The FIFO reader (see events.hpp).
#include "events.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <system_error>

namespace bench {

long long now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

EventLog::EventLog(std::string fifo_path) : path_(std::move(fifo_path)) {
  if (::mkfifo(path_.c_str(), 0600) != 0)
    throw std::system_error(errno, std::generic_category(), "mkfifo " + path_);
  // Read-write: the FIFO never reports EOF between two children's writes.
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + path_);
  // 1 MiB of buffer: a burst of 128 children or a churn of thousands per second
  // never blocks a child on a full pipe.
  ::fcntl(fd_, F_SETPIPE_SZ, 1 << 20);
  if (::pipe2(wake_, O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  reader_ = std::thread([this] { read_loop(); });
}

EventLog::~EventLog() {
  char byte = 0;
  [[maybe_unused]] ssize_t n = ::write(wake_[1], &byte, 1);
  reader_.join();
  ::close(fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
  ::unlink(path_.c_str());
}

void EventLog::read_loop() {
  std::string partial;
  char buffer[65536];
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents) return;
    // Every figure comes from the children's own stamps, so reading late changes none
    // of them. Reading in batches does: woken per line, this thread took about 6 % of
    // a CPU while preforkd churned 6,000 children per second on two CPUs, and the
    // faster side paid the more for it. The pipe holds far more than 2 ms of lines.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n <= 0) continue;
    partial.append(buffer, static_cast<size_t>(n));
    std::vector<Event> batch;
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      Event event{};
      int pid = 0;
      if (std::sscanf(partial.c_str() + start, "%c %d %lld", &event.tag, &pid, &event.ns) == 3) {
        event.pid = pid;
        batch.push_back(event);
      }
    }
    partial.erase(0, start);
    if (batch.empty()) continue;
    {
      std::lock_guard lock(mutex_);
      events_.insert(events_.end(), batch.begin(), batch.end());
    }
    changed_.notify_all();
  }
}

size_t EventLog::size() const {
  std::lock_guard lock(mutex_);
  return events_.size();
}

std::vector<Event> EventLog::since(size_t mark) const {
  std::lock_guard lock(mutex_);
  if (mark >= events_.size()) return {};
  return std::vector<Event>(events_.begin() + static_cast<long>(mark), events_.end());
}

bool EventLog::wait_until(size_t mark,
                          const std::function<bool(const std::vector<Event>&)>& done,
                          std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::unique_lock lock(mutex_);
  std::vector<Event> seen;
  for (;;) {
    if (events_.size() > mark + seen.size())
      seen.insert(seen.end(), events_.begin() + static_cast<long>(mark + seen.size()),
                  events_.end());
    if (done(seen)) return true;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      if (events_.size() > mark + seen.size())
        seen.insert(seen.end(), events_.begin() + static_cast<long>(mark + seen.size()),
                    events_.end());
      return done(seen);
    }
  }
}

}  // namespace bench
