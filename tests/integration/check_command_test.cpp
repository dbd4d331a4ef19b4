// `preforkd --check` and a refused start, through the real binary.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "harness/harness.hpp"

using namespace harness;

namespace {

// Writes `text` to `config` and runs `preforkd --check` on it.
RunResult check_file(const std::string& config, const std::string& text) {
  write_file(config, text);
  return run({preforkd_bin(), "--check", "-c", config}, "", {}, 20s);
}

}  // namespace

TEST(CheckCommand, ValidFileExitsZero) {
  auto result = run({preforkd_bin(), "-c", std::string(PREFORKD_SOURCE_DIR) + "/conf/preforkd.yaml", "--check"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("ok (3 pool(s))"), std::string::npos);
}

// Found by a probe: the last -c won without a word.
TEST(CheckCommand, AConfigGivenTwiceIsAUsageError) {
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");
  write_file(config, "pools:\n  a:\n    command: [/bin/true]\n");
  auto result = run({preforkd_bin(), "-c", config, "--config=" + config, "--check"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--config: the config file is given twice"), std::string::npos) << result.err;
}

TEST(CheckCommand, InvalidFileListsEveryProblemAndExitsOne) {
  TempDir dir;
  std::string config = dir.file("bad.yaml");
  write_file(config, "pools:\n  a:\n    command: [/bin/true]\n    workers: -1\n    colour: red\n");
  auto result = run({preforkd_bin(), "--check", "-c", config});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(config + ":4:14: pools.a.workers must be a non-negative integer (got -1)"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":5:5: unknown key 'colour' in pools.a"), std::string::npos);
}

// A delay's cap below its first step was taken without a word: which one wins is
// anybody's guess. Both growing delays say so, at the cap's key (or at the first step's
// when the cap is the default).
TEST(CheckCommand, ADelayCapBelowItsFirstStepIsAnError) {
  TempDir dir;
  std::string config = dir.file("caps.yaml");
  auto result = check_file(config, "pools:\n"
                                   "  a:\n    command: [/bin/true]\n    err_respawn_interval: 10s\n"
                                   "    err_respawn_max: 5s\n"
                                   "  b:\n    command: [/bin/true]\n    err_respawn_interval: 2m\n"
                                   "  c:\n    queues: [q]\n    handler: { exec: [/bin/true] }\n"
                                   "    retry: { base: 2h }\n");
  EXPECT_EQ(result.exit_code, 1);
  for (const std::string expected :
       {":5:22: pools.a.err_respawn_max (5000ms) is less than pools.a.err_respawn_interval (10000ms): "
        "the cap of the delay must be at least its first step; raise err_respawn_max or lower "
        "err_respawn_interval",
        ":8:27: pools.b.err_respawn_max (60000ms) is less than pools.b.err_respawn_interval (120000ms)",
        ":12:20: pools.c.retry.max (3600000ms) is less than pools.c.retry.base (7200000ms)"})
    EXPECT_NE(result.err.find(config + expected), std::string::npos) << expected << "\n" << result.err;
}

// Found by a probe: with graceful_timeout 2s and timeout_grace 10s, TERM KILLed the
// worker while its handler had its grace, and the job was not given back.
TEST(CheckCommand, AGracefulTimeoutNotLongerThanTheHandlersGraceIsAnError) {
  TempDir dir;
  std::string config = dir.file("grace.yaml");
  auto result = check_file(config, "pools:\n"
                                   "  a:\n    queues: [q]\n    handler: { exec: [/bin/true] }\n"
                                   "    graceful_timeout: 2s\n    timeout_grace: 10s\n"
                                   "  b:\n    queues: [r]\n    handler: { exec: [/bin/true] }\n"
                                   "    timeout_grace: 30s\n"
                                   "  c:\n    queues: [s]\n    handler: { exec: [/bin/true] }\n"
                                   "    graceful_timeout: 3s\n");
  EXPECT_EQ(result.exit_code, 1);
  // A probe was told of a timeout_grace of 5000ms it had never written: the default.
  for (const std::string expected :
       {":5:23: pools.a.graceful_timeout (2000ms) must be longer than pools.a.timeout_grace (10000ms): on "
        "TERM a worker would be KILLed while its handler still has its grace, and the job it runs would "
        "not be given back (it would wait for its lease); raise graceful_timeout or lower timeout_grace",
        ":10:20: pools.b.graceful_timeout (30000ms, the default) must be longer than pools.b.timeout_grace "
        "(30000ms)",
        ":14:23: pools.c.graceful_timeout (3000ms) must be longer than pools.c.timeout_grace (5000ms, the "
        "default)"})
    EXPECT_NE(result.err.find(config + expected), std::string::npos) << expected << "\n" << result.err;
}

TEST(CheckCommand, APoolNameGivenTwiceIsAnError) {
  TempDir dir;
  std::string config = dir.file("twice.yaml");
  write_file(config, "pools:\n  a: { command: [/bin/sleep, \"1000\"], workers: 1 }\n"
                     "  a: { command: [/bin/sleep, \"2000\"], workers: 3 }\n");
  auto result = run({preforkd_bin(), "--check", "-c", config});
  EXPECT_EQ(result.exit_code, 1) << result.out;
  EXPECT_NE(result.err.find(config + ":3:3: duplicate key 'a' (first at line 2, column 3)"),
            std::string::npos) << result.err;
}

TEST(CheckCommand, StartIsRefusedWithTheSameMessages) {
  TempDir dir;
  std::string config = dir.file("bad.yaml");
  write_file(config, "pools:\n  a:\n    command: [/no/such/program]\n");
  auto result = run({preforkd_bin(), "-c", config});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(config + ":3:15: pools.a.command: '/no/such/program' not found"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find("refusing to start"), std::string::npos);
}

// Root passes every permission check: --check said a directory or program was fine
// that the pool's user could not use, and every spawn then failed (chdir, exec).
TEST(CheckCommand, ADirectoryOrProgramThePoolsUserCannotUseIsAnError) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to check as another user";
  TempDir dir;  // 0700, root's: nobody cannot enter it
  std::string app = dir.file("app");
  ASSERT_EQ(::mkdir(app.c_str(), 0755), 0);
  std::string worker = app + "/worker";
  write_file(worker, "#!/bin/sh\nexec sleep 100\n");
  ASSERT_EQ(::chmod(worker.c_str(), 0755), 0);
  std::string config = dir.file("preforkd.yaml");
  std::string text = "pools:\n  a:\n    command: [" + worker + "]\n    user: nobody\n"
                     "    working_directory: " + app + "\n";
  auto result = check_file(config, text);
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find(config + ":3:15: pools.a.command: '" + worker +
                            "' cannot be executed as user 'nobody', which the pool's children run as "
                            "(Permission denied)"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":5:24: pools.a.working_directory: '" + app +
                            "' cannot be entered as user 'nobody', which the pool's children run as "
                            "(Permission denied): give that user search (x) permission on each directory"),
            std::string::npos) << result.err;
  // The start is refused with the same words; once nobody may enter, both are fine.
  auto start = run({preforkd_bin(), "-c", config}, "", {}, 20s);
  EXPECT_EQ(start.exit_code, 1);
  EXPECT_NE(start.err.find("cannot be entered as user 'nobody'"), std::string::npos) << start.err;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  result = check_file(config, text);
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST(CheckCommand, UsageErrorsExitTwo) {
  EXPECT_EQ(run({preforkd_bin()}).exit_code, 2);
  EXPECT_EQ(run({preforkd_bin(), "--bogus"}).exit_code, 2);
  EXPECT_EQ(run({preforkd_bin(), "--version"}).exit_code, 0);
}

// An alias inside the node it names makes a cyclic document; walking it used to
// overflow the stack (a segfault of --check, and of the supervisor on HUP).
TEST(CheckCommand, AnAliasInsideItsOwnAnchorIsAnErrorWithItsPosition) {
  TempDir dir;
  std::string config = dir.file("cycle.yaml");
  auto result = check_file(config, "pools:\n  a: { command: [/bin/true] }\nx: &loop\n  - 1\n  - *loop\ny: &m { k: *m }\n");
  EXPECT_EQ(result.exit_code, 1) << result.err;
  const std::string cycle = ": the node anchored here contains an alias of itself (a cycle); "
                            "write the values out instead";
  EXPECT_NE(result.err.find(config + ":3:4" + cycle), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":6:4" + cycle), std::string::npos) << result.err;

  // On HUP: the reload fails with the same message and the pool keeps running.
  write_file(config, "pools:\n  a: { command: [/bin/sleep, \"1000\"] }\n");
  Daemon daemon(config);
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  write_file(config, "pools:\n  a: &a { command: [/bin/sleep, \"1000\"], x: [*a] }\n");
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.wait_output(config + ":2:6" + cycle)) << daemon.output();
  EXPECT_TRUE(daemon.running());
  EXPECT_TRUE(daemon.wait_children(1));
}

// Aliases of aliases ("billion laughs": 9 levels of 9 aliases each stand for 9^9
// nodes): each anchored node is walked once, so the file is checked at once instead
// of keeping --check, or the supervisor on HUP, busy for hours.
TEST(CheckCommand, NestedAliasesAreWalkedOnce) {
  TempDir dir;
  std::string config = dir.file("laughs.yaml");
  std::string text = "pools:\n  a: { command: [/bin/true] }\nl0: &l0 [a, a, a, a, a, a, a, a, a]\n";
  for (int level = 1; level <= 9; ++level) {
    std::string previous = "*l" + std::to_string(level - 1);
    text += "l" + std::to_string(level) + ": &l" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i) text += (i ? ", " : "") + previous;
    text += "]\n";
  }
  auto result = check_file(config, text);
  EXPECT_EQ(result.exit_code, 1) << "killed after 20 s: " << (result.exit_code == -1);
  EXPECT_NE(result.err.find(config + ":12:1: unknown key 'l9' in the top level"), std::string::npos)
      << result.err;
}

TEST(CheckCommand, ADirectoryOrAFileNestedTooDeeplyIsNamedAsSuch) {
  TempDir dir;
  auto as_dir = run({preforkd_bin(), "--check", "-c", dir.path()});
  EXPECT_EQ(as_dir.exit_code, 1);
  EXPECT_NE(as_dir.err.find(dir.path() + ": is a directory; give the config file (e.g. " +
                            dir.path() + "/preforkd.yaml)"),
            std::string::npos) << as_dir.err;

  std::string config = dir.file("deep.yaml");
  auto deep = check_file(config, "x: " + std::string(600, '[') + std::string(600, ']') + "\npools: {}\n");
  EXPECT_EQ(deep.exit_code, 1);
  // Where yaml-cpp gives up depends on its depth limit: only the line is certain.
  EXPECT_NE(deep.err.find(config + ":1:"), std::string::npos) << deep.err;
  EXPECT_NE(deep.err.find(": YAML nested too deeply for the parser (hundreds of levels); flatten it"),
            std::string::npos) << deep.err;
}

// Both used to pass --check: yaml-cpp dropped the second document without a word, and
// the pidfile failed only at start ("rename(/): Device or resource busy").
TEST(CheckCommand, ASecondDocumentAndAPidfileThatIsADirectoryAreErrors) {
  TempDir dir;
  std::string config = dir.file("two.yaml");
  auto result = check_file(config, "pidfile: " + dir.path() + "\npools:\n  a: { command: [/bin/true] }\n---\npools: {}\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(config + ":1:10: pidfile: '" + dir.path() + "' is a directory; name a file in it"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":5:1: a second YAML document (after '---') is not read"),
            std::string::npos) << result.err;
  // Found by a probe: a second problem said to "remove the file if it is an old pidfile".
  EXPECT_EQ(result.err.find("old pidfile"), std::string::npos) << result.err;
}

// Collections are told apart by identity, not by where they start: a mapping whose
// first key is an anchored collection starts where that key does.
TEST(CheckCommand, AnAnchoredFirstKeyIsNoCycleAndAnAliasedMappingIsStillChecked) {
  TempDir dir;
  std::string config = dir.file("keys.yaml");
  auto result = check_file(config, "x:\n  &k [a]: *k\nm:\n  &d {x: 1, x: 2}: v\nother: *d\n"
                     "pools:\n  a: { command: [/bin/true] }\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err.find("cycle"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":4:13: duplicate key 'x' (first at line 4, column 7)"),
            std::string::npos) << result.err;
}

// A pidfile (or log file) on the job database replaced it with a pid at start and
// deleted it at exit: every queued job was lost. On the config file, the same.
TEST(CheckCommand, APidfileOrLogFileOnTheJobDatabaseOrTheConfigIsRefused) {
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");
  std::string jobs_pool = "pools:\n  w: { handler: { exec: [/bin/true] }, queues: [q] }\n";
  auto result = check_file(config, "pidfile: var/jobs.db\nlog: { file: preforkd.yaml }\n" + jobs_pool);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(config + ":1:10: pidfile: '" + dir.file("var/jobs.db") +
                            "' is a file of source 'default' (" + dir.file("var/jobs.db") +
                            "); writing there would destroy it: choose another path"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":2:14: log.file: '" + config + "' is the config file itself"),
            std::string::npos) << result.err;

  auto same = check_file(config, "pidfile: x.log\nlog: { file: x.log }\n" + jobs_pool);
  EXPECT_NE(same.err.find(config + ":1:10: pidfile: '" + dir.file("x.log") + "' is log.file too"),
            std::string::npos) << same.err;

  // Refused at start too, before anything is written: the file is left as it was.
  std::string text = "pidfile: preforkd.yaml\n" + jobs_pool;
  write_file(config, text);
  auto start = run({preforkd_bin(), "-c", config});
  EXPECT_EQ(start.exit_code, 1);
  EXPECT_NE(start.err.find("pidfile: '" + config + "' is the config file itself"), std::string::npos) << start.err;
  // Found by a probe: and "(or remove the file if it is an old pidfile)": the config.
  EXPECT_EQ(start.err.find("old pidfile"), std::string::npos) << start.err;
  EXPECT_EQ(read_file(config), text);
}

// Each passed --check before: env names a child cannot read back, a stop forwarded as a
// signal that freezes the children (a graceful stop then hung forever), and files that
// were read into memory without end.
TEST(CheckCommand, BadEnvNamesFreezingSignalsAndEndlessFilesAreErrors) {
  TempDir dir;
  std::string config = dir.file("odd.yaml");
  auto result = check_file(config, std::string("pools:\n  c:\n    command: [/bin/true]\n"
                                 "    env: {\"X=Y\": \"1\", \"\": bare, \"Y\\0Z\": nul, OK: fine}\n"
                                 "    signals: {QUIT: STOP, TERM: TSTP}\n"));
  EXPECT_EQ(result.exit_code, 1);
  for (const std::string expected : {":4:11: pools.c.env: 'X=Y' is not a variable name",
                                     ":4:23: pools.c.env: '' is not a variable name",
                                     ":4:33: a NUL character (an escape such as \\0 or \\x00) in 'Y\\x00Z'",
                                     ":5:21: pools.c.signals.QUIT: STOP would freeze the children",
                                     ":5:33: pools.c.signals.TERM: TSTP would freeze the children"})
    EXPECT_NE(result.err.find(config + expected), std::string::npos) << expected << "\n" << result.err;

  auto device = run({preforkd_bin(), "--check", "-c", "/dev/zero"}, "", {}, 20s);
  EXPECT_EQ(device.exit_code, 1);
  EXPECT_NE(device.err.find("/dev/zero: is not a regular file"), std::string::npos) << device.err;
  // A named pipe with no writer: opening it used to wait for one, for ever (and a
  // supervisor whose config was replaced by one hung in its HUP).
  std::string fifo = dir.file("fifo.yaml");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto pipe = run({preforkd_bin(), "--check", "-c", fifo}, "", {}, 20s);
  EXPECT_EQ(pipe.exit_code, 1);
  EXPECT_NE(pipe.err.find(fifo + ": is not a regular file"), std::string::npos) << pipe.err;
  std::string big = dir.file("big.yaml");
  // A byte over: it said "is 16 MiB, more than ... (16 MiB)".
  write_file(big, std::string((16 << 20) + 1, '#'));
  auto huge = run({preforkd_bin(), "--check", "-c", big}, "", {}, 20s);
  EXPECT_EQ(huge.exit_code, 1);
  EXPECT_NE(huge.err.find(big + ": is 16777217 bytes, more than a config file can be (16 MiB)"),
            std::string::npos)
      << huge.err;
}

// A raw NUL byte cut a value short without a word (here the program's name; in an env
// value, the variable) or gave yaml-cpp's "unknown escape character".
TEST(CheckCommand, ARawNulByteIsAnErrorWithItsPosition) {
  TempDir dir;
  std::string config = dir.file("nul.yaml");
  const char text[] = "pools:\n  a:\n    command: [/bin/t\0rue]\n";
  auto result = check_file(config, std::string(text, sizeof text - 1));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(config + ":3:21: a NUL byte: a config file is text"), std::string::npos)
      << result.err;
}
