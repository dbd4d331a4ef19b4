// Retry backoff: fixed, or exponential (base * 2^(attempt-1)) capped at max.
#include "worker/retry_policy.hpp"

#include <algorithm>

namespace preforkd {

int allowed_attempts(const RetryConfig& retry, int job_max_attempts) {
  return job_max_attempts > 0 ? job_max_attempts : retry.max_attempts;
}

RetryDecision decide_retry(const RetryConfig& retry, int attempt, int job_max_attempts) {
  if (attempt >= allowed_attempts(retry, job_max_attempts)) return {false, Duration{0}};
  Duration delay = retry.base;
  if (retry.backoff == Backoff::exponential) {
    // Doubling stops at the cap; no overflow however many attempts are allowed.
    for (int i = 1; i < attempt && delay < retry.max; ++i) delay *= 2;
  }
  return {true, std::min(delay, retry.max)};
}

}  // namespace preforkd
