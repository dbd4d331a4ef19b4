// Starting, stopping, resizing and operating the real preforkd binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness/harness.hpp"

using namespace harness;

namespace {

struct Fixture {
  TempDir dir;
  std::string events = dir.file("events");
  std::string config = dir.file("preforkd.yaml");
  std::vector<std::string> env{"TEST_CHILD_EVENTS=" + dir.file("events")};
};

std::string pool(const std::string& name, const std::string& mode, int workers,
                 const std::string& extra = "") {
  return "  " + name + ":\n    command: " + yaml_list({test_child_bin(), mode}) +
         "\n    workers: " + std::to_string(workers) + "\n" + extra;
}

}  // namespace

TEST(Lifecycle, StartsTheConfiguredNumberOfChildrenInEveryPool) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("a", "idle", 3) + pool("b", "idle", 2));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(5)) << daemon.output();
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  EXPECT_EQ(daemon.count_output("spawned pool=a"), 3u);
  EXPECT_EQ(daemon.count_output("spawned pool=b"), 2u);
}

TEST(Lifecycle, QuitStopsEveryChildGracefullyAndExitsZero) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("a", "idle", 3));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 3; }));
  daemon.signal(SIGQUIT);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0) << daemon.output();
  auto events = read_events(f.events);
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](auto& e) { return e.kind == "stop" && e.arg1 == "QUIT"; }),
            3);
}

TEST(Lifecycle, TermStopsWithinGracefulTimeoutAndKillsAChildThatIgnoresTerm) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("polite", "idle", 2) +
                           pool("stubborn", "ignore-term", 1, "    graceful_timeout: 300ms\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(3));
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 3; }));
  auto started = std::chrono::steady_clock::now();
  daemon.signal(SIGTERM);
  EXPECT_EQ(exit_code(daemon.wait_exit(10s)), 0) << daemon.output();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_TRUE(daemon.output().find("still running after graceful_timeout 300ms: sending KILL") !=
              std::string::npos)
      << daemon.output();
  EXPECT_EQ(count_events(f.events, "stop"), 2u);  // the polite ones got TERM
}

TEST(Lifecycle, IntIsAFastStopLikeTerm) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("a", "idle", 2));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(2));
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 2; }));
  daemon.signal(SIGINT);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0);
  auto events = read_events(f.events);
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](auto& e) { return e.kind == "stop" && e.arg1 == "TERM"; }),
            2);
}

TEST(Lifecycle, TtinAddsAndTtouRemovesOneWorkerInEveryPool) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("a", "idle", 2) + pool("b", "idle", 1));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(3));
  daemon.signal(SIGTTIN);
  EXPECT_TRUE(daemon.wait_children(5)) << daemon.output();
  daemon.signal(SIGTTOU);
  EXPECT_TRUE(daemon.wait_children(3)) << daemon.output();
  daemon.signal(SIGTTOU);
  EXPECT_TRUE(daemon.wait_children(1)) << daemon.output();
  daemon.signal(SIGTTOU);  // never below zero
  EXPECT_TRUE(daemon.wait_children(0)) << daemon.output();
  daemon.signal(SIGTTIN);
  EXPECT_TRUE(daemon.wait_children(2)) << daemon.output();
}

TEST(Lifecycle, PidfileIsWrittenAndRemovedAndAStartIsRefusedWhileItIsHeld) {
  Fixture f;
  write_file(f.config, "pidfile: run.pid\npools:\n" + pool("a", "idle", 1));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(1));
  ASSERT_TRUE(wait_until([&] { return !read_file(f.dir.file("run.pid")).empty(); }));
  EXPECT_EQ(std::stoi(read_file(f.dir.file("run.pid"))), daemon.pid());

  auto second = run({preforkd_bin(), "-c", f.config}, "", f.env);
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("pidfile is held by running process " + std::to_string(daemon.pid())),
            std::string::npos)
      << second.err;

  daemon.signal(SIGQUIT);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0);
  EXPECT_FALSE(std::ifstream(f.dir.file("run.pid")).good());
}

TEST(Lifecycle, StalePidfileOfADeadProcessIsReplaced) {
  Fixture f;
  write_file(f.dir.file("run.pid"), "999999\n");
  write_file(f.config, "pidfile: run.pid\npools:\n" + pool("a", "idle", 1));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  EXPECT_TRUE(wait_until(
      [&] { return read_file(f.dir.file("run.pid")) == std::to_string(daemon.pid()) + "\n"; }));
}

TEST(Lifecycle, Usr1ReopensTheLogFileAfterRotation) {
  Fixture f;
  write_file(f.config, "log: { file: preforkd.log }\npools:\n" + pool("a", "idle", 1));
  Daemon daemon(f.config, f.env);
  std::string log = f.dir.file("preforkd.log");
  ASSERT_TRUE(wait_until([&] { return read_file(log).find("spawned pool=a") != std::string::npos; }));
  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
  daemon.signal(SIGUSR1);
  ASSERT_TRUE(wait_until([&] { return read_file(log).find("log file reopened") != std::string::npos; }));
  daemon.signal(SIGTTIN);
  EXPECT_TRUE(wait_until([&] { return read_file(log).find("spawned pool=a") != std::string::npos; }));
  EXPECT_EQ(read_file(log + ".1").find("log file reopened"), std::string::npos);
}

TEST(Lifecycle, JsonLogFormatWritesOneObjectPerLine) {
  Fixture f;
  write_file(f.config, "log: { format: json }\npools:\n" + pool("a", "idle", 1));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_output("spawned pool=a"));
  std::istringstream lines(daemon.output());
  int json_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_EQ(line.front(), '{') << line;
    EXPECT_EQ(line.back(), '}') << line;
    EXPECT_NE(line.find("\"level\":\"info\""), std::string::npos) << line;
    ++json_lines;
  }
  EXPECT_GE(json_lines, 2);
}

TEST(Lifecycle, MappedSignalsAreForwardedToChildren) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("mapped", "idle", 1, "    signals: { USR2: USR2 }\n") +
                           pool("plain", "idle", 1));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(2));
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 2; }));
  daemon.signal(SIGUSR2);
  EXPECT_TRUE(wait_until([&] { return count_events(f.events, "usr2") == 1; }));
  // The unmapped pool's child was not disturbed: still both alive.
  EXPECT_EQ(daemon.children().size(), 2u);
}

TEST(Lifecycle, EnvAndWorkingDirectoryReachTheChild) {
  Fixture f;
  std::filesystem::create_directory(f.dir.file("app"));
  write_file(f.config, "pools:\n" + pool("a", "idle", 1,
                                         "    working_directory: app\n"
                                         "    env: { TEST_TAG: from-env }\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 1; }));
  auto start = read_events(f.events).front();
  EXPECT_EQ(start.arg1, f.dir.file("app"));
  EXPECT_EQ(start.arg2, "from-env");
}

TEST(Lifecycle, UserAndGroupApplyWhenRunAsRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  Fixture f;
  ::chmod(f.dir.path().c_str(), 0777);
  write_file(f.events, "");
  ::chmod(f.events.c_str(), 0666);
  write_file(f.config, "pools:\n" + pool("a", "idle", 1, "    user: nobody\n    group: nogroup\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(1));
  pid_t child = daemon.children().front();
  ASSERT_TRUE(wait_until([&] {
    return read_file("/proc/" + std::to_string(child) + "/status").find("Uid:\t65534") !=
           std::string::npos;
  })) << read_file("/proc/" + std::to_string(child) + "/status");
  EXPECT_NE(read_file("/proc/" + std::to_string(child) + "/status").find("Gid:\t65534"),
            std::string::npos);
}
