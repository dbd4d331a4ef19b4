// What the children report: the bench's FIFO, read by a thread into one time-ordered
// list of events that the scenarios wait on and count.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, as the children's stamps

long long now_ns();

struct Event {
  char tag;      // R ready, B work begun, D work done, F forked (bare latency loop)
  pid_t pid;
  long long ns;  // CLOCK_MONOTONIC, taken by the reporting process
};

class EventLog {
 public:
  explicit EventLog(std::string fifo_path);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  const std::string& path() const { return path_; }
  size_t size() const;
  std::vector<Event> since(size_t mark) const;
  // Waits until `done(events since mark)` holds or `timeout` passes; returns whether
  // it holds. `done` is evaluated under the lock, on each batch of new events.
  bool wait_until(size_t mark, const std::function<bool(const std::vector<Event>&)>& done,
                  std::chrono::milliseconds timeout);

 private:
  void read_loop();

  std::string path_;
  int fd_ = -1;
  int wake_[2] = {-1, -1};
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Event> events_;
  std::thread reader_;
};

}  // namespace bench
