// Jobs pools and sources in the config: defaults, and every error with its position.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config_file_fixture.hpp"
#include "preforkd/config.hpp"
#include "preforkd/job_handler.hpp"

using namespace std::chrono_literals;
using preforkd::ConfigError;
using preforkd::load_config;

using JobsConfig = ConfigFile;

TEST_F(JobsConfig, AJobsPoolGetsTheDefaultSqliteSourceAndDefaults) {
  std::ofstream(path_) << "pools:\n  mail:\n    handler: { exec: [/bin/cat] }\n    queues: [mail, default]\n";
  auto config = load_config(path_);
  ASSERT_EQ(config.pools.size(), 1u);
  const auto& pool = config.pools[0];
  EXPECT_EQ(pool.kind, preforkd::PoolKind::jobs);
  EXPECT_EQ(pool.jobs.handler.kind, preforkd::HandlerKind::exec);
  EXPECT_EQ(pool.jobs.handler.argv, std::vector<std::string>{"/bin/cat"});
  EXPECT_EQ(pool.jobs.queues, (std::vector<std::string>{"mail", "default"}));
  EXPECT_EQ(pool.jobs.source, "default");
  ASSERT_EQ(config.sources.count("default"), 1u);
  EXPECT_EQ(config.sources.at("default").type, "sqlite");
  EXPECT_EQ(pool.jobs.retry.max_attempts, 3);
  EXPECT_EQ(pool.jobs.max_output_logged, size_t{1} << 20);
  EXPECT_FALSE(config.node.empty());
}

TEST_F(JobsConfig, EverySettingIsRead) {
  std::ofstream(path_) << "node: web-1\n"
                          "sources:\n  local: { type: sqlite, path: db/j.db, lease: 5s }\n"
                          "pools:\n  p:\n    handler: { persistent: [/bin/cat] }\n    queues: [a]\n"
                          "    source: local\n    max_requests_per_child: 100\n"
                          "    max_requests_jitter: 7\n    timeout: 30s\n    timeout_grace: 2s\n"
                          "    retry: { max_attempts: 5, backoff: fixed, base: 250ms, max: 1m }\n"
                          "    max_output_logged: 64KiB\n";
  auto config = load_config(path_);
  const auto& jobs = config.pools[0].jobs;
  EXPECT_EQ(jobs.max_output_logged, 65536u);
  EXPECT_EQ(config.node, "web-1");
  EXPECT_EQ(config.sources.at("local").settings.at("lease"), "5s");
  EXPECT_EQ(config.sources.at("local").node, "web-1");
  EXPECT_EQ(jobs.handler.kind, preforkd::HandlerKind::persistent);
  EXPECT_EQ(jobs.max_requests_per_child, 100);
  EXPECT_EQ(jobs.max_requests_jitter, 7);
  EXPECT_EQ(jobs.timeout, 30s);
  EXPECT_EQ(jobs.timeout_grace, 2s);
  EXPECT_EQ(jobs.retry.max_attempts, 5);
  EXPECT_EQ(jobs.retry.backoff, preforkd::Backoff::fixed);
  EXPECT_EQ(jobs.retry.base, 250ms);
  EXPECT_EQ(jobs.retry.max, 60s);
}

TEST_F(JobsConfig, HandlerAndQueueErrorsHaveTheirPositions) {
  auto problems = problems_of(
      "pools:\n"
      "  a:\n"
      "    handler: { shell: [x] }\n"              // 3
      "    queues: [ok, 'bad name', ok]\n"         // 4
      "  b:\n"
      "    handler: { exec: [/nonexistent/h] }\n"  // 6
      "  c:\n"
      "    handler: in_process\n"
      "    queues: [nobody_registered]\n");        // 9
  ASSERT_EQ(problems.size(), 6u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(3, 16, "pools.a.handler: unknown handler kind 'shell'; must be { exec: [argv] }, { persistent: [argv] } or in_process"));
  EXPECT_EQ(problems[1], at(4, 18, "pools.a.queues: queue name 'bad name' may only use letters, digits, '_', '.', ':', '-'"));
  EXPECT_EQ(problems[2], at(4, 30, "pools.a.queues: queue 'ok' listed twice"));
  EXPECT_EQ(problems[3], at(6, 5, "pools.b: a jobs pool needs 'queues: [name, ...]'"));
  EXPECT_EQ(problems[4], at(6, 23, "pools.b.handler.exec: '/nonexistent/h' not found"));
  EXPECT_NE(problems[5].find(at(9, 14, "pools.c.queues: no in-process handler is registered for queue 'nobody_registered'")), std::string::npos) << problems[5];
}

TEST_F(JobsConfig, RetryAndLimitErrorsHaveTheirPositions) {
  auto problems = problems_of(
      "pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n"
      "    max_requests_per_child: -1\n"                                       // 5
      "    timeout: soon\n"                                                    // 6
      "    retry: { max_attempts: 0, backoff: linear, base: 1x, tries: 3 }\n");  // 7
  ASSERT_EQ(problems.size(), 6u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(5, 29, "pools.a.max_requests_per_child must be a non-negative integer (got -1)"));
  EXPECT_NE(problems[1].find(at(6, 14, "pools.a.timeout: 'soon' is not a duration")), std::string::npos);
  EXPECT_EQ(problems[2], at(7, 28, "pools.a.retry.max_attempts must be at least 1 (1 = never retry)"));
  EXPECT_EQ(problems[3], at(7, 40, "pools.a.retry.backoff: 'linear' is not one of exponential, fixed"));
  EXPECT_NE(problems[4].find(at(7, 54, "pools.a.retry.base: '1x' is not a duration")), std::string::npos);
  EXPECT_NE(problems[5].find(at(7, 58, "unknown key 'tries' in pools.a.retry")), std::string::npos);
}

TEST_F(JobsConfig, SourceErrorsHaveTheirPositions) {
  auto problems = problems_of(
      "sources:\n"
      "  one: { type: sqlite, lease: 10ms, colour: red }\n"  // 2
      "  two: { type: mongodb }\n"                           // 3
      "  three: { path: x.db }\n"                            // 4
      "pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n    source: nine\n"  // 9
      "  b:\n    command: [/bin/true]\n    queues: [q]\n");  // 12
  ASSERT_EQ(problems.size(), 6u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(2, 31, "sources.one.lease: must be at least 1s (got 10ms)"));
  EXPECT_EQ(problems[1], at(2, 37, "unknown key 'colour' in sources.one (a sqlite source takes: path lease busy_timeout keep_done prefetch)"));
  EXPECT_NE(problems[2].find(at(3, 16, "sources.two.type: unknown source type 'mongodb'")), std::string::npos);
  EXPECT_NE(problems[3].find(at(4, 10, "sources.three needs 'type:'")), std::string::npos);
  EXPECT_EQ(problems[4], at(9, 13, "pools.a.source: no source named 'nine' (defined: one)"));
  EXPECT_EQ(problems[5], at(12, 5, "pools.b.queues applies only to jobs pools (those with 'handler:')"));
}

// Found by a probe: a path that named a directory passed --check, and the first worker
// then said "unable to open database file", with advice about permissions.
TEST_F(JobsConfig, ADatabasePathThatIsADirectoryIsAnError) {
  std::filesystem::create_directories(dir_ / "dbdir");
  auto problems = problems_of("sources:\n  l: { type: sqlite, path: dbdir }\n"
                              "pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n");
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  std::string database = (dir_ / "dbdir").string();
  EXPECT_EQ(problems[0], at(2, 28, "sources.l.path: '" + database + "' is a directory: give the path of the "
                                   "database file (such as " + database + "/jobs.db)"));
  // The default source, which has no path written anywhere.
  std::filesystem::create_directories(dir_ / "var" / "jobs.db");
  problems = problems_of("pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n");
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_NE(problems[0].find(", is a directory: move it away, or name another file with sources: {"),
            std::string::npos) << problems[0];
}

// Found by a probe: `prefetch: 5` in a pool got the list of a pool's keys, with no
// word that it is a source's.
TEST_F(JobsConfig, ASourcesSettingInAPoolSaysWhereItGoes) {
  auto problems = problems_of("pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n"
                              "    prefetch: 5\n");
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(5, 5, "unknown key 'prefetch' in pools.a: prefetch is a setting of a job source "
                                  "(postgres, redis, sqlite): write it under sources: NAME, and name that "
                                  "source in the pool with source: NAME"));
}

// Found by a probe: hiredis takes a timeout of 0 for none, and a Redis that accepted
// and never answered held preforkd's start (TERM too) until the peer closed.
TEST_F(JobsConfig, ARedisTimeoutOfZeroIsRefused) {
  auto problems = problems_of("sources:\n  r: { type: redis, timeout: 0s }\n"
                              "pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n");
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(2, 30, "sources.r.timeout: must be more than 0 (the longest a connect or a "
                                   "command may wait; got 0s)"));
}

// Found by a probe: two names for one set of jobs, each with its own settings.
TEST_F(JobsConfig, TwoSourcesOnOneDatabaseFileAreAnError) {
  auto problems = problems_of("sources:\n  a: { type: sqlite, path: var/x.db }\n"
                              "  b: { type: sqlite, path: ./var/../var/x.db, lease: 5s }\n"
                              "pools:\n  p:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n    source: a\n");
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_NE(problems[0].find(":3:3: sources.b: its database "), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("/var/x.db is source 'a''s too; use that source (pools may share one)"),
            std::string::npos)
      << problems[0];
}

// Found by a probe: taken without a word, and it did nothing.
TEST_F(JobsConfig, AJitterWithoutARequestLimitIsAnError) {
  auto problems = problems_of("pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n"
                              "    max_requests_jitter: 50\n");
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(5, 26, "pools.a.max_requests_jitter adds to max_requests_per_child, which is not "
                                   "set (no limit): set it, or drop the jitter"));
}

// Found by a probe: --check passed it, and the start refused it.
TEST_F(JobsConfig, APostgresSourceWithoutItsUrlIsAnError) {
  auto problems = problems_of("sources:\n  pg: { type: postgres, lease: 5s }\n"
                              "pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n");
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(2, 3, "sources.pg: a postgres source needs 'url:' (a libpq conninfo "
                                  "(host=... dbname=...) or a postgresql:// URL)"));
}

TEST_F(JobsConfig, SqlitePrefetchIsACountFromOneTo1000) {
  auto problems = problems_of(
      "sources:\n"
      "  one: { type: sqlite, prefetch: 0 }\n"      // 2
      "  two: { type: sqlite, prefetch: many, path: two.db }\n"   // 3
      "  three: { type: sqlite, prefetch: 1000, path: three.db }\n"
      "pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n    source: three\n");
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(2, 34, "sources.one.prefetch: must be a number from 1 to 1000 (got 0)"));
  EXPECT_EQ(problems[1], at(3, 34, "sources.two.prefetch: must be a number from 1 to 1000 (got many)"));
}

TEST_F(JobsConfig, InProcessNeedsARegisteredHandlerPerQueue) {
  preforkd::register_job_handler("thumbs", [](const preforkd::Job&, preforkd::JobContext&) {
    return preforkd::JobResult::done();
  });
  std::ofstream(path_) << "pools:\n  a:\n    handler: in_process\n    queues: [thumbs]\n";
  EXPECT_NO_THROW(load_config(path_));
  std::ofstream(path_) << "pools:\n  a:\n    handler: in_process\n    queues: [thumbs, other]\n";
  EXPECT_THROW(load_config(path_), ConfigError);
  // Tools that only use the sources (preforkctl) skip the registration check.
  EXPECT_NO_THROW(load_config(path_, false));
}

TEST_F(JobsConfig, ASignalThatWouldKillAJobsWorkerMidJobIsRefused) {
  // A jobs worker handles QUIT, TERM, INT and HUP (as QUIT) and does nothing on USR1 and
  // USR2; ALRM would end it by the default action, in the middle of a job. A command
  // pool's program may handle anything.
  auto problems = problems_of(
      "pools:\n"
      "  j:\n"
      "    handler: { exec: [/bin/cat] }\n"
      "    queues: [q]\n"
      "    signals: { USR2: USR2, HUP: TERM, WINCH: WINCH, INT: alrm }\n"  // 5
      "  c:\n"
      "    command: [/bin/true]\n"
      "    signals: { USR2: USR2 }\n"
      "  k:\n"
      "    handler: { exec: [/bin/cat] }\n"
      "    queues: [q2]\n"
      "    signals: { QUIT: KILL }\n");  // 12: found by a probe, a graceful stop cut jobs off
  ASSERT_EQ(problems.size(), 3u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(5, 22, "pools.j.signals.USR2: a jobs pool's workers do nothing on USR2, so it "
                                   "would tell them nothing; map it to QUIT (stop after the job), TERM or "
                                   "INT (stop now), or remove it"));
  EXPECT_EQ(problems[1], at(5, 58, "pools.j.signals.INT: a jobs pool's workers have no handler for "
                                   "ALRM, which would kill them in the middle of a job; map it to "
                                   "QUIT (stop after the job), TERM or INT (stop now), or remove it"));
  EXPECT_EQ(problems[2], at(12, 22, "pools.k.signals.QUIT: KILL would kill a jobs pool's workers in the "
                                    "middle of a job; map it to QUIT (stop after the job), TERM or INT "
                                    "(stop now), or remove it"));
}

TEST_F(JobsConfig, MaxOutputLoggedIsASizeInBytesOrPowersOf1024) {
  auto size_of = [&](const std::string& value) {
    std::ofstream(path_) << "pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n"
                            "    max_output_logged: " << value << "\n";
    return load_config(path_).pools[0].jobs.max_output_logged;
  };
  EXPECT_EQ(size_of("0"), 0u);
  EXPECT_EQ(size_of("4096"), 4096u);
  EXPECT_EQ(size_of("100B"), 100u);
  EXPECT_EQ(size_of("2MiB"), size_t{2} << 20);
  EXPECT_EQ(size_of("1GiB"), size_t{1} << 30);
  for (std::string bad : {"1MB", "-1", "1.5MiB", "MiB", "2048GiB", "[1]"}) {
    auto problems = problems_of("pools:\n  a:\n    handler: { exec: [/bin/cat] }\n    queues: [q]\n"
                                "    max_output_logged: " + bad + "\n");
    ASSERT_EQ(problems.size(), 1u) << bad << ::testing::PrintToString(problems);
    EXPECT_NE(problems[0].find(":5:24: pools.a.max_output_logged must be "), std::string::npos)
        << problems[0];
  }
  auto command_pool = problems_of("pools:\n  a:\n    command: [/bin/cat]\n    max_output_logged: 1MiB\n");
  ASSERT_EQ(command_pool.size(), 1u) << ::testing::PrintToString(command_pool);
  EXPECT_EQ(command_pool[0], at(4, 5, "pools.a.max_output_logged applies only to jobs pools (those with 'handler:')"));
}
