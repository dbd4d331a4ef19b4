// The PostgreSQL source: many hosts share one job table. Claims are one UPDATE over a
// FOR UPDATE SKIP LOCKED sub-select, leases live in locked_by / lease_until, and idle
// workers sleep on LISTEN until an enqueue NOTIFYs them or the next job falls due.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "preforkd/job_source.hpp"

namespace preforkd::postgres {

struct PostgresSettings {
  std::string url;  // libpq conninfo or postgresql:// URL
  std::string schema = "public";
  std::string table = "preforkd_jobs";
  std::chrono::milliseconds lease{std::chrono::seconds(30)};
  std::chrono::milliseconds keep_done{std::chrono::hours(24)};
  int prefetch = 1;  // jobs leased per claim, 1..1000
};

// Connects, creates the table when missing, and returns the source. Throws SourceError.
std::unique_ptr<JobSource> open_postgres_source(const PostgresSettings& settings,
                                                const std::string& worker_id);

}  // namespace preforkd::postgres
