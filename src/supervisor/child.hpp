// One child process as the supervisor sees it: which pool and generation it belongs
// to, what it last reported, and whether it has been told to stop.
#pragma once

#include <sys/types.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "preforkd/config.hpp"
#include "supervisor/status_report.hpp"

namespace preforkd {

using Clock = std::chrono::steady_clock;

struct Child {
  enum class State { starting, idle, busy };

  Child(boost::asio::io_context& io, pid_t pid_, std::string pool_, unsigned generation_,
        Duration graceful_timeout_, int status_fd)
      : pid(pid_), pool(std::move(pool_)), generation(generation_),
        graceful_timeout(graceful_timeout_), status(io, status_fd), kill_timer(io) {}

  pid_t pid;
  std::string pool;
  unsigned generation;
  Duration graceful_timeout;
  Clock::time_point started_at = Clock::now();
  State state = State::starting;
  std::string busy_with;
  unsigned requests = 0;
  int cpu = -1;                 // pinned to (cpu_affinity), else -1
  bool execs = false;           // command pool: exec closes the status socket
  bool stopping = false;        // told to stop (reload, TTOU, shutdown): not replaced
  bool done = false;            // reported its clean end (X): replaced before it is reaped
  std::optional<int> exec_errno;

  boost::asio::posix::stream_descriptor status;
  StatusReader status_reader;
  std::array<char, 512> read_buffer{};
  boost::asio::steady_timer kill_timer;
};

std::string describe_exit(int wait_status);

}  // namespace preforkd
