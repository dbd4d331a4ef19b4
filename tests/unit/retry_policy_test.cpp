// The retry policy: exponential or fixed backoff, capped, and dead after max_attempts.
#include <gtest/gtest.h>

#include "worker/retry_policy.hpp"

using namespace std::chrono_literals;
using preforkd::Backoff;
using preforkd::decide_retry;
using preforkd::RetryConfig;

TEST(RetryPolicy, ExponentialDoublesFromBaseUpToMax) {
  RetryConfig retry{10, Backoff::exponential, 2s, 10s};
  EXPECT_EQ(decide_retry(retry, 1, 0).delay, 2s);
  EXPECT_EQ(decide_retry(retry, 2, 0).delay, 4s);
  EXPECT_EQ(decide_retry(retry, 3, 0).delay, 8s);
  EXPECT_EQ(decide_retry(retry, 4, 0).delay, 10s);
  EXPECT_TRUE(decide_retry(retry, 9, 0).retry);
}

TEST(RetryPolicy, FixedAlwaysWaitsBase) {
  RetryConfig retry{5, Backoff::fixed, 250ms, 1h};
  EXPECT_EQ(decide_retry(retry, 1, 0).delay, 250ms);
  EXPECT_EQ(decide_retry(retry, 4, 0).delay, 250ms);
}

TEST(RetryPolicy, GivesUpAfterMaxAttemptsAndAJobMayOverrideIt) {
  RetryConfig retry{3, Backoff::exponential, 1s, 1h};
  EXPECT_TRUE(decide_retry(retry, 2, 0).retry);
  EXPECT_FALSE(decide_retry(retry, 3, 0).retry);
  EXPECT_TRUE(decide_retry(retry, 3, 5).retry);
  EXPECT_FALSE(decide_retry(retry, 1, 1).retry);
}

TEST(RetryPolicy, HugeAttemptCountsDoNotOverflow) {
  RetryConfig retry{1000000, Backoff::exponential, 1s, 1h};
  EXPECT_EQ(decide_retry(retry, 999999, 0).delay, 1h);
}
