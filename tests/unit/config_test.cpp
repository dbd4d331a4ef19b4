// Config loading: every error class with its exact FILE:LINE:COL, and valid files.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config_file_fixture.hpp"
#include "preforkd/config.hpp"
#include "preforkd/worker_function.hpp"

using namespace std::chrono_literals;
using preforkd::ConfigError;
using preforkd::load_config;


TEST_F(ConfigFile, ValidFileParsesWithDefaultsAndResolvedPaths) {
  std::filesystem::create_directory(dir_ / "app");
  std::ofstream(path_) << "log: { level: debug, format: json, file: preforkd.log }\n"
                          "pidfile: preforkd.pid\n"
                          "pools:\n"
                          "  a:\n"
                          "    command: [sh, -c, 'exit 0']\n"
                          "    workers: 3\n"
                          "    env: { A: 1, B: two }\n"
                          "    working_directory: app\n"
                          "    spawn_interval: 250ms\n"
                          "    err_respawn_interval: 1.5s\n"
                          "    err_respawn_max: 5m\n"
                          "    graceful_timeout: 1h\n"
                          "    signals: { HUP: TERM, sigusr2: usr1 }\n";
  auto config = load_config(path_);
  EXPECT_EQ(config.base_dir, dir_.string());
  EXPECT_EQ(config.log.level, "debug");
  EXPECT_EQ(config.log.format, preforkd::LogFormat::json);
  EXPECT_EQ(config.log.file, (dir_ / "preforkd.log").string());
  EXPECT_EQ(config.pidfile, (dir_ / "preforkd.pid").string());
  ASSERT_EQ(config.pools.size(), 1u);
  const auto& pool = config.pools[0];
  EXPECT_EQ(pool.name, "a");
  EXPECT_EQ(pool.command[0].front(), '/');  // found in PATH
  EXPECT_EQ(pool.command[1], "-c");
  EXPECT_EQ(pool.workers, 3);
  EXPECT_EQ(pool.env.at("A"), "1");
  EXPECT_EQ(pool.working_directory, (dir_ / "app").string());
  EXPECT_EQ(pool.spawn_interval, 250ms);
  EXPECT_EQ(pool.err_respawn_interval, 1500ms);
  EXPECT_EQ(pool.err_respawn_max, 5min);
  EXPECT_EQ(pool.graceful_timeout, 1h);
  EXPECT_EQ(pool.forwarded_signal(SIGHUP), SIGTERM);
  EXPECT_EQ(pool.forwarded_signal(SIGUSR2), SIGUSR1);
  EXPECT_EQ(pool.forwarded_signal(SIGQUIT), SIGQUIT);
  EXPECT_EQ(pool.forwarded_signal(SIGINT), SIGTERM);
  EXPECT_EQ(pool.forwarded_signal(SIGWINCH), 0);
}

TEST_F(ConfigFile, UnknownKeysAreReportedWithTheClosestKey) {
  auto problems = problems_of("pools:\n  a:\n    command: [true]\n    worker: 2\nlogg: {}\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0], at(4, 5, "unknown key 'worker' in pools.a (did you mean 'workers'?)"));
  EXPECT_EQ(problems[1], at(5, 1, "unknown key 'logg' in the top level (did you mean 'log'?)"));
}

TEST_F(ConfigFile, UnknownKeyFarFromAnyListsTheAllowedOnes) {
  auto problems = problems_of("log: { colour: red }\npools: { a: { command: [true] } }\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], at(1, 8, "unknown key 'colour' in log; allowed: level format file"));
}

TEST_F(ConfigFile, NegativeAndNonIntegerCountsAreRejected) {
  auto problems = problems_of("pools:\n  a:\n    command: [true]\n    workers: -3\n"
                              "  b:\n    command: [true]\n    workers: two\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0], at(4, 14, "pools.a.workers must be a non-negative integer (got -3)"));
  EXPECT_EQ(problems[1], at(7, 14, "pools.b.workers must be a non-negative integer (got two)"));
}

TEST_F(ConfigFile, ACountAboveTheLimitSaysTheLimit) {
  auto problems = problems_of("pools:\n  a:\n    command: [true]\n    workers: 200000\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], at(4, 14, "pools.a.workers must be at most 100000 (got 200000)"));
}

TEST_F(ConfigFile, AKeyGivenTwiceIsAnErrorAtTheSecond) {
  // Two pools of one name, and one key twice in a pool: yaml-cpp keeps both, and a
  // lookup would silently see only the first.
  auto problems = problems_of("pools:\n  a:\n    command: [true]\n    workers: 1\n    workers: 3\n"
                              "  a:\n    command: [true]\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0], at(5, 5, "duplicate key 'workers' (first at line 4, column 5); keep one of them"));
  EXPECT_EQ(problems[1], at(6, 3, "duplicate key 'a' (first at line 2, column 3); keep one of them"));
}

// Found by a probe: `workers: ""` said "(got )", and a '[' left open said only "end of
// sequence flow not found" on the line after.
TEST_F(ConfigFile, AnEmptyStringAndAnUnclosedBracketAreNamed) {
  auto problems = problems_of("pools:\n  a:\n    command: [true]\n    workers: \"\"\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], at(4, 14, "pools.a.workers must be a non-negative integer (got an empty string)"));
  problems = problems_of("pools:\n  a:\n    command: [true, x\n    workers: 1\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("(a '[' or '{' before this point is not closed: look for the missing ']' or '}' "
                             "on the lines above)"),
            std::string::npos) << problems[0];
}

TEST_F(ConfigFile, AnEmptyValueIsReportedAtItsKey) {
  auto problems = problems_of("pidfile:\npools:\n  a:\n    command: [true]\n    workers:\n"
                              "    spawn_interval:\n");
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0], at(1, 1, "pidfile must be a string, got nothing"));
  EXPECT_EQ(problems[1], at(5, 5, "pools.a.workers must be a non-negative integer (got nothing)"));
  EXPECT_EQ(problems[2], at(6, 5, "pools.a.spawn_interval must be a duration such as 250ms, 30s, 5m, got nothing"));
}

TEST_F(ConfigFile, CpuAffinityIsAutoNoneOrUsableCpuNumbers) {
  auto problems = problems_of("pools:\n"
                              "  a: { command: [true], cpu_affinity: sometimes }\n"   // 2
                              "  b: { command: [true], cpu_affinity: [0, 99999] }\n"  // 3
                              "  c: { command: [true], cpu_affinity: [] }\n"          // 4
                              "  d: { command: [true], cpu_affinity: auto }\n"
                              "  e: { command: [true], cpu_affinity: none }\n"
                              "  f: { command: [true], cpu_affinity: [0] }\n");
  ASSERT_EQ(problems.size(), 3u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(2, 39, "pools.a.cpu_affinity: 'sometimes' is not auto, none or a list of CPU numbers"));
  EXPECT_EQ(problems[1].rfind(at(3, 43, "pools.b.cpu_affinity: '99999' is not a CPU this supervisor may use ("), 0), 0u)
      << problems[1];
  EXPECT_EQ(problems[2], at(4, 39, "pools.c.cpu_affinity: expected auto, none or a list of CPU numbers such as [0, 1]"));
}

TEST_F(ConfigFile, BadDurationsAreRejected) {
  auto problems = problems_of("pools:\n  a:\n    command: [true]\n    graceful_timeout: 10\n"
                              "    spawn_interval: -1s\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0], at(4, 23, "pools.a.graceful_timeout: '10' is not a duration (a unit is "
                                   "missing; write e.g. 250ms, 30s, 5m, 1h)"));
  EXPECT_EQ(problems[1], at(5, 21, "pools.a.spawn_interval: '-1s' is not a duration (a duration "
                                   "cannot be negative; write e.g. 250ms, 30s, 5m, 1h)"));
}

TEST_F(ConfigFile, WrongTypesAreRejected) {
  auto problems = problems_of("pools:\n  a:\n    command: /bin/true\n    env: [A]\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0], at(3, 14, "pools.a.command must be a list of strings such as "
                                   "[perl, worker.pl], got a scalar (write [/bin/true] for one)"));
  EXPECT_EQ(problems[1], at(4, 10, "pools.a.env must be a mapping (key: value), got a list"));
}

TEST_F(ConfigFile, AQueueListWrittenAsOneNameSaysHowToWriteIt) {
  auto problems = problems_of("pools:\n  w:\n    handler: { exec: [/bin/true] }\n    queues: mail\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], at(4, 13, "pools.w.queues must be a list of strings such as "
                                   "[mail, default], got a scalar (write [mail] for one)"));
}

TEST_F(ConfigFile, MissingCommandIsReported) {
  auto problems = problems_of("pools:\n  a:\n    command: [bin/nope]\n  b:\n"
                              "    command: [no-such-program-xyz]\n    env: { PATH: /nowhere }\n");
  ASSERT_EQ(problems.size(), 2u);
  // The whole path looked at (a probe was shown only the directory).
  EXPECT_EQ(problems[0], at(3, 15, "pools.a.command: 'bin/nope' not found (no " + dir_.string() +
                                       "/bin/nope)"));
  EXPECT_EQ(problems[1], at(5, 15, "pools.b.command: 'no-such-program-xyz' not found in PATH "
                                   "(/nowhere)"));
}

TEST_F(ConfigFile, CommandThatIsNotExecutableIsReported) {
  std::ofstream(dir_ / "worker.sh") << "#!/bin/sh\n";
  ::chmod((dir_ / "worker.sh").c_str(), 0644);
  auto problems = problems_of("pools:\n  a:\n    command: [./worker.sh]\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], at(3, 15, "pools.a.command: '" + dir_.string() +
                                       "/./worker.sh' is not an executable file (chmod +x it?)"));
}

TEST_F(ConfigFile, RelativeCommandIsLookedUpInTheWorkingDirectoryAndKeptRelative) {
  std::filesystem::create_directories(dir_ / "current/bin");
  std::ofstream(dir_ / "current/bin/worker") << "#!/bin/sh\n";
  ::chmod((dir_ / "current/bin/worker").c_str(), 0755);
  std::ofstream(path_) << "pools:\n  a:\n    command: [bin/worker]\n"
                          "    working_directory: current\n";
  auto config = load_config(path_);
  // Kept relative so that after a `current` switch the new release's program runs.
  EXPECT_EQ(config.pools[0].command[0], "bin/worker");
}

TEST_F(ConfigFile, MissingWorkingDirectoryIsReported) {
  auto problems = problems_of("pools:\n  a:\n    command: [/bin/true]\n"
                              "    working_directory: /no/such/dir\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], at(4, 24, "pools.a.working_directory: '/no/such/dir' does not exist or "
                                   "is not a directory"));
}

TEST_F(ConfigFile, YamlSyntaxErrorHasItsPosition) {
  auto problems = problems_of("pools:\n  a: [unclosed\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].rfind(path_ + ":3:1: YAML syntax error: ", 0), 0u) << problems[0];
}

TEST_F(ConfigFile, UnreadableFileSaysWhy) {
  try {
    load_config(path_ + ".missing");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.problems().at(0), path_ + ".missing: cannot read: No such file or directory");
  }
}

TEST_F(ConfigFile, CommandAndFunctionAreExclusive) {
  auto problems = problems_of("pools:\n  a:\n    workers: 1\n  b:\n    command: [/bin/true]\n"
                              "    function: f\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0], at(3, 5, "pools.a needs exactly one of 'command' (a program to run), "
                                  "'function' (a registered C++ function) or 'handler' (a jobs "
                                  "pool with 'queues')"));
}

TEST_F(ConfigFile, UnregisteredFunctionIsReported) {
  preforkd::register_worker_function("known_fn", [](preforkd::ChildContext&) { return 0; });
  auto problems = problems_of("pools:\n  a:\n    function: other_fn\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], at(3, 15, "pools.a.function: 'other_fn' is not registered in this "
                                   "program (registered: known_fn)"));
  EXPECT_TRUE(problems_of("pools:\n  a:\n    function: known_fn\n").empty());
}

TEST_F(ConfigFile, ForkServerIsTrueOrFalseAndOnlyForPoolsThatFork) {
  preforkd::register_worker_function("known_fn", [](preforkd::ChildContext&) { return 0; });
  auto problems = problems_of("pools:\n"
                              "  a: { function: known_fn, fork_server: yes }\n"  // 2
                              "  b: { command: [true], fork_server: false }\n"   // 3
                              "  c: { function: known_fn, fork_server: false }\n");
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(2, 41, "pools.a.fork_server must be true or false (got yes)"));
  EXPECT_EQ(problems[1], at(3, 38, "pools.b.fork_server applies only to function and jobs pools "
                                   "(a command pool's children exec at once and never use it)"));
}

TEST_F(ConfigFile, BadSignalsLogLevelUsersAndPoolNamesAreReported) {
  auto problems = problems_of("log: { level: loud, format: xml }\n"
                              "pools:\n  'bad name':\n    command: [/bin/true]\n"
                              "    signals: { KILL: TERM, HUP: BOGUS }\n"
                              "    user: no-such-user-xyz\n");
  ASSERT_EQ(problems.size(), 6u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(1, 15, "log.level: 'loud' is not one of trace, debug, info, warn, "
                                   "error, critical, off"));
  EXPECT_EQ(problems[1], at(1, 29, "log.format: 'xml' is not one of text, json"));
  EXPECT_EQ(problems[2], at(3, 3, "pool name 'bad name' may only use letters, digits, '_', '.', '-'"));
  EXPECT_EQ(problems[3], at(5, 16, "pools.bad name.signals: 'KILL' cannot be mapped; use one of "
                                   "HUP QUIT TERM INT USR1 USR2 WINCH"));
  EXPECT_EQ(problems[4], at(5, 33, "pools.bad name.signals.HUP: unknown signal 'BOGUS'"));
  EXPECT_EQ(problems[5], at(6, 11, "pools.bad name.user: no such user 'no-such-user-xyz'"));
}

TEST_F(ConfigFile, NoPoolsIsAnError) {
  auto problems = problems_of("log: { level: info }\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], at(1, 1, "no 'pools:' section: add at least one pool (see conf/preforkd.yaml)"));
}

// Found by a probe: each of these was accepted without a word, or said something else
// than what was wrong.
TEST_F(ConfigFile, EmptyPathsHugeCountsNegativeDurationsAndTabsSayWhatIsWrong) {
  auto problems = problems_of("pidfile: ''\nlog: { file: '' }\npools:\n  a:\n    command: [/bin/true]\n"
                              "    workers: 99999999999999999999\n    spawn_interval: -5s\n");
  ASSERT_EQ(problems.size(), 4u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(1, 10, "pidfile must not be empty (leave the key out for no pidfile)"));
  EXPECT_EQ(problems[1], at(2, 14, "log.file must not be empty (leave the key out to log to stderr)"));
  EXPECT_EQ(problems[2], at(6, 14, "pools.a.workers must be at most 100000 (got 99999999999999999999)"));
  EXPECT_EQ(problems[3], at(7, 21, "pools.a.spawn_interval: '-5s' is not a duration (a duration cannot be "
                                   "negative; write e.g. 250ms, 30s, 5m, 1h)"));
  auto tab = problems_of("pools:\n  a:\n\tcommand: [/bin/true]\n");
  ASSERT_EQ(tab.size(), 1u) << ::testing::PrintToString(tab);
  EXPECT_NE(tab[0].find(":3:2: YAML syntax error: "), std::string::npos) << tab[0];
  EXPECT_NE(tab[0].find("(this line is indented with a tab: YAML allows spaces only)"), std::string::npos)
      << tab[0];
}

TEST_F(ConfigFile, PidfileInAMissingDirectoryIsReported) {
  auto problems = problems_of("pidfile: /no/such/dir/p.pid\npools: { a: { command: [/bin/true] } }\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], at(1, 10, "pidfile: directory '/no/such/dir' does not exist (create it first)"));
}
