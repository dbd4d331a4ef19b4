// The retry policy of a jobs pool: after a failed attempt, run again after a backoff
// or give up (dead).
#pragma once

#include "preforkd/config.hpp"
#include "preforkd/job.hpp"

namespace preforkd {

// `attempt` is the attempt that just failed (1 for the first run); `job_max_attempts`
// overrides the pool's retry.max_attempts when > 0.
RetryDecision decide_retry(const RetryConfig& retry, int attempt, int job_max_attempts);

// How many runs a job gets.
int allowed_attempts(const RetryConfig& retry, int job_max_attempts);

}  // namespace preforkd
