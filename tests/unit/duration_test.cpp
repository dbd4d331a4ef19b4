#include <gtest/gtest.h>
#include <signal.h>

#include "preforkd/config.hpp"

using namespace std::chrono_literals;
using preforkd::parse_duration;

TEST(Duration, AcceptsTheDocumentedUnits) {
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("1h"), 1h);
  EXPECT_EQ(parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_duration("0"), 0ms);
  EXPECT_EQ(parse_duration("0s"), 0ms);
}

TEST(Duration, RejectsAnythingElse) {
  for (const char* bad : {"", "10", "5x", "-1s", "s", "1.2.3s", "1 s", "31d", "999999h"})
    EXPECT_THROW(parse_duration(bad), std::invalid_argument) << bad;
}

TEST(SignalNames, AcceptPrefixAndAnyCase) {
  EXPECT_EQ(preforkd::signal_from_name("TERM"), SIGTERM);
  EXPECT_EQ(preforkd::signal_from_name("sigquit"), SIGQUIT);
  EXPECT_EQ(preforkd::signal_from_name("Usr2"), SIGUSR2);
  EXPECT_EQ(preforkd::signal_from_name("NOPE"), 0);
  EXPECT_EQ(preforkd::signal_name(SIGHUP), "HUP");
}
