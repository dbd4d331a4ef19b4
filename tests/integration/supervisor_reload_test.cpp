// HUP: graceful reload to a new generation, and what happens when the new file is bad.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>

#include "harness/harness.hpp"

using namespace harness;

namespace {

struct Fixture : ChildFixture {
  size_t starts_tagged(const std::string& tag) const {
    size_t n = 0;
    for (const auto& e : read_events(events)) n += e.kind == "start" && e.arg2 == tag;
    return n;
  }
};

std::string pool(const std::string& name, const std::vector<std::string>& args, int workers,
                 const std::string& tag, const std::string& extra = "") {
  return child_pool(name, args, workers, "    env: { TEST_TAG: " + tag + " }\n" + extra);
}

}  // namespace

TEST(Reload, HupLetsABusyChildFinishItsWorkAndReplacesItWithTheNewConfig) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("a", {"work-on-quit", "2000"}, 1, "old"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return f.starts_tagged("old") == 1; }));
  pid_t old_child = read_events(f.events).front().pid;

  write_file(f.config, "pools:\n" + pool("a", {"idle"}, 1, "new"));
  daemon.signal(SIGHUP);
  // The new generation starts while the old child is still working.
  ASSERT_TRUE(wait_until([&] { return f.starts_tagged("new") == 1; })) << daemon.output();
  EXPECT_TRUE(pid_alive(old_child));
  EXPECT_EQ(count_events(f.events, "done"), 0u);
  // The old child completes its 2 s piece of work and exits on its own: not killed.
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "done") == 1; }, 10s));
  ASSERT_TRUE(daemon.wait_output("exited pool=a pid=" + std::to_string(old_child) +
                                 " generation=1: exit status 0"))
      << daemon.output();
  EXPECT_TRUE(daemon.wait_children(1));
}

TEST(Reload, HupWithABadFileKeepsTheOldPoolRunningAndSaysWhere) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("a", {"idle"}, 2, "old"));
  Daemon daemon(f.config, f.env);
  // Both children have run far enough to log their start (not merely forked).
  ASSERT_TRUE(wait_until([&] { return f.starts_tagged("old") == 2; }));
  auto before = daemon.children();

  write_file(f.config, "pools:\n  a:\n    command: [\"/bin/true\"]\n    workers: -3\n");
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.wait_output("reload failed")) << daemon.output();
  // Each problem is a log line of its own after "reload failed": wait for it too (a
  // loaded machine showed the test reading in between).
  EXPECT_TRUE(daemon.wait_output(f.config + ":4:14:")) << daemon.output();
  auto after = daemon.children();
  std::sort(before.begin(), before.end());
  std::sort(after.begin(), after.end());
  EXPECT_EQ(before, after);
  EXPECT_EQ(f.starts_tagged("old"), 2u);

  // A pool name of 100,000 characters overflowed the stack of the name check: the
  // supervisor died of SIGSEGV, its pools with it, and left its pidfile behind.
  write_file(f.config, "pools:\n  ? " + std::string(100000, 'a') + "\n  : { command: [\"/bin/true\"] }\n");
  daemon.signal(SIGHUP);
  EXPECT_TRUE(daemon.wait_output(f.config + ":2:5: pool name 'aaaa")) << daemon.output().substr(0, 4000);
  EXPECT_TRUE(daemon.running());
  after = daemon.children();
  std::sort(after.begin(), after.end());
  EXPECT_EQ(before, after);

  // And a good file afterwards still reloads.
  write_file(f.config, "pools:\n" + pool("a", {"idle"}, 1, "fixed"));
  daemon.signal(SIGHUP);
  EXPECT_TRUE(wait_until([&] { return f.starts_tagged("fixed") == 1; })) << daemon.output();
  EXPECT_TRUE(daemon.wait_children(1));
}

TEST(Reload, HupAppliesAddedRemovedAndResizedPools) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("keep", {"idle"}, 1, "keep1") +
                           pool("drop", {"idle"}, 2, "drop1"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 3; }));
  write_file(f.config, "pools:\n" + pool("keep", {"idle"}, 3, "keep2") +
                           pool("added", {"idle"}, 2, "added2"));
  daemon.signal(SIGHUP);
  EXPECT_TRUE(wait_until([&] { return f.starts_tagged("keep2") == 3 && f.starts_tagged("added2") == 2; }));
  EXPECT_TRUE(daemon.wait_children(5)) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("generation 2 ready"));
}

TEST(Reload, HupForwardsTheSignalThePoolMapsItTo) {
  Fixture f;
  write_file(f.config, "pools:\n" + pool("a", {"idle"}, 1, "old", "    signals: { HUP: TERM }\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return f.starts_tagged("old") == 1; }));
  daemon.signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "stop") == 1; }));
  auto events = read_events(f.events);
  auto stop = std::find_if(events.begin(), events.end(), [](auto& e) { return e.kind == "stop"; });
  ASSERT_NE(stop, events.end());
  EXPECT_EQ(stop->arg1, "TERM");
}

TEST(Reload, CapistranoSymlinkSwitchRunsNewChildrenInTheNewRelease) {
  Fixture f;
  namespace fs = std::filesystem;
  fs::create_directories(f.dir.file("releases/1"));
  fs::create_directories(f.dir.file("releases/2"));
  fs::create_directory_symlink(f.dir.file("releases/1"), f.dir.file("current"));
  write_file(f.config, "pools:\n" + pool("app", {"work-on-quit", "1000"}, 1, "t",
                                         "    working_directory: current\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 1; }));
  auto first = read_events(f.events).front();
  EXPECT_EQ(first.arg1, f.dir.file("releases/1"));

  // Deploy: repoint `current` atomically, as capistrano does, then HUP.
  fs::create_directory_symlink(f.dir.file("releases/2"), f.dir.file("current.new"));
  fs::rename(f.dir.file("current.new"), f.dir.file("current"));
  daemon.signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return count_events(f.events, "start") == 2; })) << daemon.output();
  EXPECT_EQ(read_events(f.events)[1].arg1, f.dir.file("releases/2"));
  // The old child finishes in the old release, where it still is.
  EXPECT_TRUE(pid_alive(first.pid));
  EXPECT_EQ(fs::read_symlink("/proc/" + std::to_string(first.pid) + "/cwd").string(),
            f.dir.file("releases/1"));
  EXPECT_TRUE(wait_until([&] { return count_events(f.events, "done") == 1; }));
}
