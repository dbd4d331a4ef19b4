// Opening a new SQLite job database from several processes at once (a supervisor
// starting while `preforkctl enqueue` runs) must not fail. Switching a new file to WAL
// upgrades a read lock to an exclusive one, and SQLite answers that with SQLITE_BUSY at
// once, without waiting busy_timeout, when another connection reads at the same moment.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "preforkd/job_source.hpp"

namespace {

std::filesystem::path make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "preforkd-sqlite-race-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

}  // namespace

TEST(SqliteOpenRace, ManyConnectionsOpeningANewDatabaseAtOnceAllSucceed) {
  constexpr int openers = 6;
  constexpr int rounds = 100;  // before the fix about one round in ten failed
  auto dir = make_temp_dir();
  std::atomic<int> failures{0};
  std::string first_error;
  std::mutex error_mutex;
  for (int round = 0; round < rounds; ++round) {
    preforkd::SourceConfig config;
    config.name = "default";
    config.type = "sqlite";
    config.settings["path"] = (dir / ("jobs-" + std::to_string(round) + ".db")).string();
    std::barrier start(openers);
    std::vector<std::thread> threads;
    for (int i = 0; i < openers; ++i)
      threads.emplace_back([&] {
        start.arrive_and_wait();
        try {
          preforkd::open_job_source(config);
        } catch (const std::exception& e) {
          std::lock_guard lock(error_mutex);
          if (failures++ == 0) first_error = e.what();
        }
      });
    for (auto& thread : threads) thread.join();
  }
  std::filesystem::remove_all(dir);
  EXPECT_EQ(failures.load(), 0) << first_error << " in " << rounds << " rounds";
}
