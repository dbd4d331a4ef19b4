#include "supervisor/status_report.hpp"

#include <gtest/gtest.h>

using preforkd::StatusReader;
using preforkd::StatusReport;
using Kind = preforkd::StatusReport::Kind;

TEST(StatusReport, EncodeThenParseRoundTrips) {
  for (auto kind : {Kind::ready, Kind::busy, Kind::idle, Kind::exec_failed, Kind::done}) {
    StatusReport in{kind, kind == Kind::busy ? "job 42" : ""};
    StatusReader reader;
    auto out = reader.feed(preforkd::encode_status(in));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, kind);
    EXPECT_EQ(out[0].detail, in.detail);
  }
}

TEST(StatusReport, ReaderJoinsLinesSplitAcrossReads) {
  StatusReader reader;
  EXPECT_TRUE(reader.feed("R\nB jo").size() == 1);
  auto rest = reader.feed("b 7\nI\n");
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].detail, "job 7");
  EXPECT_EQ(rest[1].kind, Kind::idle);
}

TEST(StatusReport, MalformedLinesAreSkipped) {
  StatusReader reader;
  auto out = reader.feed("Q\nRR\n\nI\n");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::idle);
}

TEST(StatusReport, NewlineInDetailCannotSplitAReport) {
  auto line = preforkd::encode_status({Kind::busy, "a\nR"});
  StatusReader reader;
  auto out = reader.feed(line);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].detail, "a R");
}

TEST(StatusReport, EndlessLineIsDroppedNotBuffered) {
  StatusReader reader;
  EXPECT_TRUE(reader.feed(std::string(10000, 'B')).empty());
  EXPECT_EQ(reader.feed("I\n").size(), 1u);
}
