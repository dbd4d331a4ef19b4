// A worker child's connection to its source, kept usable through outages: opened on
// demand, reopened with growing backoff after a failure, and one log line when an
// outage starts and one when it ends (never one per retry, never a crash loop). What
// a failed source had not written (finished jobs, jobs leased ahead) is carried to the
// next one and settled there first.
#pragma once

#include <memory>

#include "preforkd/config.hpp"
#include "worker/child_context.hpp"

namespace preforkd {

class SourceConnection {
 public:
  SourceConnection(const PoolConfig& pool, const SourceConfig& source, ForkedChildContext& context);
  ~SourceConnection();
  SourceConnection(const SourceConnection&) = delete;
  SourceConnection& operator=(const SourceConnection&) = delete;

  // The open source, or nullptr after waiting one backoff step (cut short by a stop).
  JobSource* get();
  // The source failed: drop the connection; the next get() reopens it.
  void broken(const std::exception& error);

 private:
  void wait_backoff();
  void end_outage();  // logs how long it lasted, resets the backoff
  // Writes on the new source what the failed ones left (JobSource::take_unsettled).
  // Throws SourceError; what it did not write stays carried.
  void settle_carried();

  const PoolConfig& pool_;
  const SourceConfig& config_;
  ForkedChildContext& context_;
  std::unique_ptr<JobSource> source_;
  JobSource::Unsettled carried_;
  bool in_outage_ = false;
  // The jobs carried through this outage were said once: each reconnect try that fails
  // again carries the same ones.
  bool carried_said_ = false;
  std::chrono::steady_clock::time_point outage_started_, last_outage_log_;
  std::string outage_error_;  // the last error logged in this outage
  Duration backoff_{0};
};

}  // namespace preforkd
