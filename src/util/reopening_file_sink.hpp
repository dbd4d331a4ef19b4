// The log file sink: a file opened with O_APPEND and O_CLOEXEC (an exec'd child never
// inherits it), written with one write() per line (nothing buffered, so nothing is
// written twice by a fork), and reopened after logrotate moved it.
//
// The supervisor reopens on USR1 and then bumps a counter in memory shared with every
// forked child (jobs workers, library pools); each child's copy of the sink sees the
// new value at its next line and opens the path afresh itself. No signal reaches the
// child's own code for it.
#pragma once

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "util/unique_fd.hpp"

namespace preforkd {

class ReopeningFileSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  // Opens `path` (created 0644 less the umask); throws spdlog::spdlog_ex when it cannot.
  // `generation` is the shared counter that asks every copy of the sink to reopen.
  ReopeningFileSink(std::string path, const std::atomic<uint64_t>& generation);

  // Opens the path afresh and writes there from now on. When that fails it throws and
  // the sink keeps writing to the file it had.
  void reopen();
  // reopen() if the shared counter moved since this copy last opened the file. A
  // failure keeps the file it had, and is returned (it is not retried until the next
  // move of the counter).
  std::optional<std::string> follow();
  // follow(), its failure said at this process's next line.
  void follow_and_say_failure_later();

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  static UniqueFd open_file(const std::string& path);
  void write_line(const spdlog::details::log_msg& msg);

  std::string path_;
  const std::atomic<uint64_t>& generation_;
  uint64_t seen_generation_;
  std::optional<std::string> unsaid_failure_;
  UniqueFd fd_;
};

}  // namespace preforkd
