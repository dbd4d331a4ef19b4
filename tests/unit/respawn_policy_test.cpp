#include "supervisor/respawn_policy.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using preforkd::Duration;
using preforkd::RespawnPolicy;

TEST(RespawnPolicy, CleanExitRespawnsAtOnce) {
  RespawnPolicy policy(1s, 60s);
  EXPECT_EQ(policy.on_exit(true, 1ms), Duration{0});
  EXPECT_EQ(policy.consecutive_failures(), 0);
}

TEST(RespawnPolicy, RepeatedFailuresDoubleTheDelayUpToTheCap) {
  RespawnPolicy policy(250ms, 2s);
  EXPECT_EQ(policy.on_exit(false, 1ms), 250ms);
  EXPECT_EQ(policy.on_exit(false, 1ms), 500ms);
  EXPECT_EQ(policy.on_exit(false, 1ms), 1000ms);
  EXPECT_EQ(policy.on_exit(false, 1ms), 2000ms);
  EXPECT_EQ(policy.on_exit(false, 1ms), 2000ms);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(policy.on_exit(false, 1ms), 2000ms);
}

TEST(RespawnPolicy, ChildThatLivedLongEnoughResetsTheBackoff) {
  RespawnPolicy policy(1s, 60s);
  policy.on_exit(false, 1ms);
  policy.on_exit(false, 1ms);
  EXPECT_EQ(policy.on_exit(false, RespawnPolicy::healthy_lifetime), 1s);
  EXPECT_EQ(policy.consecutive_failures(), 1);
}

TEST(RespawnPolicy, CleanExitResetsTheFailureCount) {
  RespawnPolicy policy(1s, 60s);
  policy.on_exit(false, 1ms);
  policy.on_exit(false, 1ms);
  policy.on_exit(true, 1ms);
  EXPECT_EQ(policy.on_exit(false, 1ms), 1s);
}

TEST(RespawnPolicy, ZeroBaseMeansNoDelay) {
  RespawnPolicy policy(0s, 60s);
  EXPECT_EQ(policy.on_exit(false, 1ms), Duration{0});
}
