// The child side of a forked (library or jobs) pool child: stop flags set by QUIT and
// TERM, a way to sleep until one arrives, and status reports to the supervisor.
#pragma once

#include <string>

#include "preforkd/worker_function.hpp"
#include "util/unique_fd.hpp"

namespace preforkd {

class ForkedChildContext final : public ChildContext {
 public:
  // Installs the QUIT/TERM/INT handlers; call once, in the child, right after fork.
  ForkedChildContext(std::string pool, unsigned generation, UniqueFd status_fd);

  const std::string& pool() const override { return pool_; }
  unsigned generation() const override { return generation_; }
  bool stop_requested() const override;
  bool fast_stop_requested() const override;
  bool wait_for_stop(std::chrono::milliseconds timeout) override;
  void ready() override;
  void busy(std::string_view what) override;
  void idle() override;
  // Idle again after `jobs` jobs in a row (one busy report covered them all).
  void idle_after(unsigned jobs);
  // The function returned 0 and the child exits next: the last report.
  void done();

  // The fd that becomes readable when a stop is requested (for poll loops).
  static int stop_fd();

 private:
  void report(const std::string& line);

  std::string pool_;
  unsigned generation_;
  UniqueFd status_fd_;
};

}  // namespace preforkd
