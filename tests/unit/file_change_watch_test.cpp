// FileChangeWatch without inotify (out of instances or watches: here, a directory that
// does not exist) falls back to waking every poll_interval instead of failing.
#include <gtest/gtest.h>

#include <chrono>

#include "util/file_change_watch.hpp"

using preforkd::FileChangeWatch;

TEST(FileChangeWatch, WithoutInotifyItWakesEveryPollIntervalInsteadOfThrowing) {
  FileChangeWatch watch("/nonexistent/preforkd-test-dir", "jobs.db-wal");
  watch.drain();
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(watch.wait(std::chrono::seconds(30), -1));
  // Woken by the poll interval, not by the 30 s timeout (generous bound: a loaded CI).
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}
