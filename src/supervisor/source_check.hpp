// A reload's source check, run in a forked process. Opening a source can wait for a
// timeout (a database host that drops packets, a Redis that accepts and never answers);
// done in the supervisor, that wait froze everything else: no reaping, no respawn, no
// TERM. The check process reports what check_sources found through a pipe; the
// supervisor carries on meanwhile and finishes the reload when it has the answer.
#pragma once

#include <sys/types.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "preforkd/config.hpp"

namespace preforkd {

class SourceCheck {
 public:
  // Forks the check process at once; `on_finished` is posted to `io` once the process
  // has reported and been reaped (see reaped()). Throws when the fork fails.
  SourceCheck(boost::asio::io_context& io, Config config, std::function<void()> on_finished);
  // Kills and reaps the process if it still runs (a stop during the check).
  ~SourceCheck();
  SourceCheck(const SourceCheck&) = delete;
  SourceCheck& operator=(const SourceCheck&) = delete;

  pid_t pid() const { return pid_; }
  // The supervisor's end of the report pipe: not for children forked meanwhile.
  int report_fd() const { return report_fd_; }
  // The supervisor's waitpid(-1) reaped the check process.
  void reaped(int wait_status);
  bool finished() const { return report_complete_ && wait_status_.has_value(); }
  // Once finished: one "FILE:LINE:COL: source 'NAME': why" per source that cannot be
  // used, or why the check itself failed. Empty: every source works.
  std::vector<std::string> problems() const;
  Config& config() { return config_; }

 private:
  void read_report();
  void maybe_finished();

  boost::asio::io_context& io_;
  Config config_;
  std::function<void()> on_finished_;
  pid_t pid_ = -1;
  boost::asio::posix::stream_descriptor report_;
  int report_fd_ = -1;
  std::array<char, 4096> chunk_{};
  std::string report_text_;
  bool report_complete_ = false;
  std::optional<int> wait_status_;
  // Expires with this object; the pending read's handler holds a weak reference.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace preforkd
