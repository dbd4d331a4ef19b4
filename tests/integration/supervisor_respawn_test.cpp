// Respawn policy, reaping and orphan prevention, seen from outside the real binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "harness/harness.hpp"

using namespace harness;

namespace {

using Fixture = ChildFixture;

size_t zombie_children(pid_t parent) {
  std::ifstream in("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                   "/children");
  size_t zombies = 0;
  for (pid_t pid; in >> pid;) zombies += is_zombie(pid);
  return zombies;
}

}  // namespace

TEST(Respawn, AChildKilledWithSigkillIsReplaced) {
  Fixture f;
  write_file(f.config, "pools:\n" + child_pool("a", {"idle"}, 2));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(2));
  pid_t victim = daemon.children().front();
  ::kill(victim, SIGKILL);
  ASSERT_TRUE(daemon.wait_output("pid=" + std::to_string(victim) + " generation=1: killed by signal 9 (KILL)"))
      << daemon.output();
  EXPECT_TRUE(wait_until([&] {
    auto now = daemon.children();
    return now.size() == 2 && std::find(now.begin(), now.end(), victim) == now.end();
  }));
}

TEST(Respawn, ACommandThatFailsAtOnceIsRespawnedWithGrowingDelay) {
  Fixture f;
  write_file(f.config, "pools:\n" + child_pool("broken", {"exit", "1"}, 1,
                                         "    err_respawn_interval: 100ms\n"
                                         "    err_respawn_max: 800ms\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_output("respawn pool=broken in", 15s, 6)) << daemon.output();
  std::regex delay_re("respawn pool=broken in (\\d+)ms");
  std::vector<int> delays;
  std::string log = daemon.output();
  for (std::sregex_iterator it(log.begin(), log.end(), delay_re), end; it != end; ++it)
    delays.push_back(std::stoi((*it)[1]));
  ASSERT_GE(delays.size(), 6u);
  EXPECT_EQ(std::vector<int>(delays.begin(), delays.begin() + 6),
            (std::vector<int>{100, 200, 400, 800, 800, 800}));
  // No fork storm: the spawns were spread over at least the sum of the delays.
  auto starts = count_events(f.events, "start");
  EXPECT_LE(starts, delays.size() + 1);
}

TEST(Respawn, NoZombiesAfterFiveHundredChildExits) {
  Fixture f;
  write_file(f.config, "pools:\n" + child_pool("churn", {"exit", "0"}, 4));
  Daemon daemon(f.config, f.env);
  // A deadline, not a duration: about 5 s in release, 20 s under ASan; a loaded machine
  // running the ASan build once needed more than 60 s.
  ASSERT_TRUE(daemon.wait_output("exited pool=churn", 180s, 500)) << daemon.count_output("exited");
  daemon.signal(SIGQUIT);
  ASSERT_TRUE(daemon.wait_exit(15s)) << daemon.output();
  // Every child that exited was reaped: each "start" has its "exited" line.
  EXPECT_EQ(daemon.count_output("exited pool=churn"), daemon.count_output("spawned pool=churn"));
}

TEST(Respawn, NoZombieChildrenWhileRunning) {
  Fixture f;
  write_file(f.config, "pools:\n" + child_pool("churn", {"exit", "0"}, 4, "    spawn_interval: 20ms\n") +
                           child_pool("idle", {"idle"}, 1));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_output("exited pool=churn", 30s, 100));
  daemon.signal(SIGTTOU);  // churn pool to 3, idle pool to 0
  ASSERT_TRUE(daemon.wait_output("TTOU: pool=idle now 0"));
  // A zombie would be a child the supervisor forgot to reap; give it a moment to catch
  // up with the last exits, then there must be none.
  EXPECT_TRUE(wait_until([&] { return zombie_children(daemon.pid()) == 0; }, 5s));
}

TEST(Respawn, NoChildIsLeftBehindAfterKill9OfTheSupervisor) {
  Fixture f;
  write_file(f.config, "pools:\n" + child_pool("a", {"idle"}, 3) + child_pool("b", {"ignore-term"}, 1));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(4));
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 4; }));
  auto children = daemon.children();
  daemon.signal(SIGKILL);
  ASSERT_TRUE(daemon.wait_exit());
  EXPECT_TRUE(wait_until([&] {
    return std::none_of(children.begin(), children.end(), [](pid_t pid) { return pid_alive(pid); });
  }));
}

TEST(Respawn, ASpawnThatCannotStartIsLoggedAndRetriedWithBackoff) {
  Fixture f;
  std::filesystem::create_directory(f.dir.file("app"));
  write_file(f.config, "pools:\n" + child_pool("a", {"exit", "0"}, 1,
                                         "    working_directory: app\n"
                                         "    err_respawn_interval: 50ms\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_output("exited pool=a", 15s, 3));
  std::filesystem::remove(f.dir.file("app"));
  ASSERT_TRUE(daemon.wait_output("cannot spawn pool=a: realpath(" + f.dir.file("app") +
                                 "): No such file or directory", 15s, 2))
      << daemon.output();
  EXPECT_TRUE(daemon.running());
  std::filesystem::create_directory(f.dir.file("app"));
  auto exits = daemon.count_output("exited pool=a");
  EXPECT_TRUE(daemon.wait_output("exited pool=a", 15s, exits + 2));
}

TEST(Respawn, TermStopsASupervisorWhoseChildrenExitAsSoonAsTheyStart) {
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");
  write_file(config, "pools:\n  churn:\n    function: exit_at_once\n"
                     "    workers: 32\n    spawn_interval: 0s\n");
  Daemon daemon(config, {}, {}, test_inprocess_bin());
  // Hundreds of respawns: the supervisor is busy reaping and forking.
  ASSERT_TRUE(daemon.wait_output("spawned pool=churn", 30s, 300)) << daemon.output();
  daemon.signal(SIGTERM);
  EXPECT_EQ(exit_code(daemon.wait_exit(10s)), 0) << "still churning after TERM";
  EXPECT_TRUE(daemon.wait_output("TERM received: fast stop", 1s));
}

namespace {

// Replays the log of a pool: +1 at each spawn, -1 at a child's first sign of its end
// (its "done" report or its exit). The most that were alive and working at once.
int most_children_at_once(const std::string& log, const std::string& pool, int* replaced_early) {
  std::regex spawned("spawned pool=" + pool + " pid=(\\d+)");
  std::regex done("pool=" + pool + " pid=(\\d+) is done and exiting");
  std::regex exited("exited pool=" + pool + " pid=(\\d+)");
  std::set<std::string> ended;
  int alive = 0, most = 0;
  *replaced_early = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, spawned)) {
      most = std::max(most, ++alive);
    } else if (std::regex_search(line, m, done)) {
      if (ended.insert(m[1]).second) --alive;
      ++*replaced_early;
    } else if (std::regex_search(line, m, exited)) {
      if (ended.insert(m[1]).second) --alive;
    }
  }
  return most;
}

// Runs one library pool named churn (`pool_keys`: its lines) until `exits` of its
// children have exited, stops it with QUIT and returns the whole log.
std::string run_churn(const std::string& pool_keys, size_t exits) {
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");
  write_file(config, "log: { level: debug }\npools:\n  churn:\n" + pool_keys);
  Daemon daemon(config, {}, {}, test_inprocess_bin());
  EXPECT_TRUE(daemon.wait_output("exited pool=churn", 30s, exits)) << daemon.output();
  daemon.signal(SIGQUIT);
  EXPECT_EQ(exit_code(daemon.wait_exit(15s)), 0) << daemon.output();
  return daemon.output();
}

size_t count_lines_with(const std::string& log, const std::string& needle) {
  size_t count = 0;
  for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++count;
  return count;
}

}  // namespace

TEST(Respawn, AFunctionThatReturnsZeroIsReplacedAsItExitsAndNeverTwice) {
  // The child reports its clean end just before _exit, and the supervisor starts the
  // replacement while the kernel tears the old process down. Still one replacement per
  // child, never more children at work than `workers`.
  std::string log = run_churn("    function: exit_at_once\n    workers: 3\n    spawn_interval: 0s\n", 300);
  int replaced_early = 0;
  EXPECT_EQ(most_children_at_once(log, "churn", &replaced_early), 3);
  EXPECT_GT(replaced_early, 0) << "no child was replaced on its done report";
  // Every child the supervisor started, it also saw exit.
  EXPECT_EQ(count_lines_with(log, "spawned pool=churn"), count_lines_with(log, "exited pool=churn"));
}

TEST(Respawn, TheExitLineCountsEveryRequestTheChildReportedBeforeItDied) {
  // Each child reports pid % 7 + 1 requests and exits at once, so its last reports and
  // its exit reach the supervisor together. The exit line must count them all: before,
  // a child reaped before its socket was read was logged with fewer.
  std::string log = run_churn("    function: requests_by_pid_then_exit\n    workers: 8\n"
                              "    spawn_interval: 0s\n    err_respawn_interval: 0s\n", 400);
  std::regex exited("exited pool=churn pid=(\\d+) .* (\\d+) request\\(s\\)");
  std::istringstream lines(log);
  int seen = 0, wrong = 0;
  std::string first_wrong;
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, exited)) continue;
    ++seen;
    if (std::stoi(m[2]) != std::stoi(m[1]) % 7 + 1 && wrong++ == 0) first_wrong = line;
  }
  EXPECT_GE(seen, 400);
  EXPECT_EQ(wrong, 0) << "of " << seen << " exit lines, the first: " << first_wrong;
  // 0s was asked for; the operator is told what it means.
  EXPECT_NE(log.find("pool=churn: err_respawn_interval 0s turns the respawn backoff off"),
            std::string::npos);
}

// Out of file descriptors (each function child's status socket is one): the spawns that
// fail say which limit to raise, are retried with backoff, and the rest keep running.
TEST(Respawn, RunningOutOfFileDescriptorsNamesTheLimitToRaise) {
  Fixture f;
  write_file(f.config, "pools:\n  f:\n    function: ready_and_idle\n    workers: 40\n"
                       "    err_respawn_interval: 100ms\n");
#if defined(__SANITIZE_ADDRESS__)
  // UBSan's vptr check probes memory through a pipe of its own (IsAccessibleMemoryRange);
  // in a process out of descriptors it cannot make one and reports a valid object as
  // having an invalid vptr, before its suppressions are even consulted. The release
  // build runs this test.
  GTEST_SKIP() << "the sanitizers need descriptors of their own";
#endif
  Process daemon({"/bin/sh", "-c", "ulimit -n 32 && exec " + test_inprocess_bin() + " -c " + f.config},
                 f.dir.file("daemon.log"));
  ASSERT_TRUE(daemon.wait_output("Too many open files (the open-file limit: raise ulimit -n, or "
                                 "LimitNOFILE= under systemd); next try in"))
      << daemon.output();
  EXPECT_TRUE(daemon.running());
  EXPECT_GE(daemon.count_output("spawned pool=f"), 10u) << daemon.output();
  daemon.signal(SIGTERM);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0) << daemon.output();
}

// A program deleted (or made unexecutable) after start: the respawned child cannot
// exec it, and the log says which file and why.
TEST(Respawn, AChildThatCannotExecSaysWhichProgramAndWhy) {
  Fixture f;
  std::string program = f.dir.file("worker.sh");
  write_file(program, "#!/bin/sh\nexec " + test_child_bin() + " idle\n");
  std::filesystem::permissions(program, std::filesystem::perms::owner_all);
  write_file(f.config, "pools:\n  a:\n    command: [" + program + "]\n"
                       "    err_respawn_interval: 100ms\n");
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 1; })) << daemon.output();
  std::filesystem::remove(program);
  ::kill(read_events(f.events).front().pid, SIGKILL);
  EXPECT_TRUE(daemon.wait_output("could not start: execve(" + program + "): No such file or directory"))
      << daemon.output();
  EXPECT_TRUE(daemon.running());
}
