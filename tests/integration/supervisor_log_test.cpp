// The log file and USR1: a reopen that fails keeps the daemon and its children, forked
// job workers follow a reopen, and an exec'd child never holds the log file open. And a
// library pool's own spdlog loggers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "harness/harness.hpp"
#include "harness/jobs_harness.hpp"

using namespace harness;

namespace {

bool file_has(const std::string& path, const std::string& needle) {
  return read_file(path).find(needle) != std::string::npos;
}

// The daemon's processes (children, fork server, spares) that have `path` open.
std::vector<pid_t> holders_of(const Daemon& daemon, const std::string& path) {
  std::vector<pid_t> holders;
  for (pid_t pid : children_of(daemon.pid())) {
    std::error_code ec;
    for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
      std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
      if (target == path || target == path + " (deleted)") {
        holders.push_back(pid);
        break;
      }
    }
  }
  return holders;
}

}  // namespace

TEST(Log, AReopenThatFailsIsLoggedAndTheDaemonAndItsChildrenKeepRunning) {
  ChildFixture f;
  std::string log = f.dir.file("preforkd.log");
  write_file(f.config, "log: { file: preforkd.log }\npools:\n" + child_pool("a", {"idle"}, 2));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(2)) << read_file(log);
  auto children = daemon.children();

  // logrotate moved the file, and the path cannot be opened now.
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_EQ(::mkdir(log.c_str(), 0755), 0);
  daemon.signal(SIGUSR1);
  ASSERT_TRUE(wait_until([&] { return file_has(log + ".1", "still writing to the file opened before"); }))
      << read_file(log + ".1");
  EXPECT_TRUE(file_has(log + ".1", "Is a directory")) << read_file(log + ".1");
  EXPECT_TRUE(daemon.running());
  EXPECT_EQ(daemon.children(), children);

  // Once the path works again, the next USR1 moves to it.
  std::filesystem::remove(log);
  daemon.signal(SIGUSR1);
  ASSERT_TRUE(wait_until([&] { return file_has(log, "log file reopened"); })) << read_file(log + ".1");
  daemon.signal(SIGQUIT);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0) << read_file(log);
}

TEST(Log, ForkedJobWorkersWriteToTheReopenedFile) {
  JobsFixture f;
  std::string log = f.dir.file("preforkd.log");
  write_file(f.config, "log: { file: preforkd.log }\npools:\n" +
                           jobs_pool("work", exec_handler(), {"q"}, 2));
  Daemon daemon(f.config, f.env);
  std::string first = f.enqueue("q", "{}");
  ASSERT_TRUE(f.wait_state(first, "done")) << read_file(log);
  ASSERT_TRUE(wait_until([&] { return file_has(log, "exec handler got job " + first); })) << read_file(log);

  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  daemon.signal(SIGUSR1);
  ASSERT_TRUE(wait_until([&] { return file_has(log, "log file reopened"); })) << read_file(log + ".1");
  // The line of the next job is written by a worker forked before the USR1.
  std::string second = f.enqueue("q", "{}");
  ASSERT_TRUE(f.wait_state(second, "done")) << read_file(log);
  EXPECT_TRUE(wait_until([&] { return file_has(log, "exec handler got job " + second); }))
      << "new file:\n" << read_file(log) << "old file:\n" << read_file(log + ".1");
  EXPECT_FALSE(file_has(log + ".1", "exec handler got job " + second));
}

// Found by a probe: the fork server and its spare kept logrotate's old file open until
// the next HUP (its disk space never given back), and an idle jobs worker until its next
// line. Now the server and the spares follow the USR1, and a worker at its next fetch.
TEST(Log, AfterARotationNoProcessOfPreforkdHoldsTheOldFile) {
  JobsFixture f;
  std::string log = f.dir.file("preforkd.log");
  write_file(f.config, "log: { file: preforkd.log }\npools:\n" + jobs_pool("work", exec_handler(), {"q"}, 1));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return daemon.fork_servers().size() == 1 && daemon.spares().size() == 1; }))
      << read_file(log);
  ASSERT_TRUE(daemon.wait_children(1));
  ASSERT_TRUE(wait_until([&] { return holders_of(daemon, log).size() == 3; })) << read_file(log);

  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  daemon.signal(SIGUSR1);
  ASSERT_TRUE(wait_until([&] { return file_has(log, "log file reopened"); })) << read_file(log + ".1");
  // The worker waits for a job: one wakes it (it would look again within 30 s anyway).
  std::string id = f.enqueue("q", "{}");
  ASSERT_TRUE(f.wait_state(id, "done")) << read_file(log);
  EXPECT_TRUE(wait_until([&] { return holders_of(daemon, log + ".1").empty(); }))
      << "still open in " << ::testing::PrintToString(holders_of(daemon, log + ".1")) << "; fork server "
      << ::testing::PrintToString(daemon.fork_servers()) << ", spares " << ::testing::PrintToString(daemon.spares());
  EXPECT_TRUE(wait_until([&] { return daemon.spares().size() == 1; }));
  EXPECT_EQ(holders_of(daemon, log).size(), 3u);
}

// Found by a probe: a named pipe at the log's path held the open, and the supervisor
// with it, until something read the pipe: no respawn, TERM unheard.
TEST(Log, ANamedPipeAtTheLogPathIsAnErrorNotAHang) {
  ChildFixture f;
  std::string log = f.dir.file("preforkd.log");
  write_file(f.config, "log: { file: preforkd.log }\npools:\n" + child_pool("a", {"idle"}, 1));
  {
    ASSERT_EQ(::mkfifo(log.c_str(), 0644), 0);
    auto start = run({preforkd_bin(), "-c", f.config}, "", f.env, 20s);
    EXPECT_EQ(start.exit_code, 1) << start.err;
    EXPECT_NE(start.err.find("a named pipe that nobody reads: give a regular file"), std::string::npos) << start.err;
    ASSERT_EQ(::unlink(log.c_str()), 0);
  }
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(1)) << read_file(log);
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_EQ(::mkfifo(log.c_str(), 0644), 0);
  daemon.signal(SIGUSR1);
  EXPECT_TRUE(wait_until([&] { return file_has(log + ".1", "a named pipe that nobody reads"); }))
      << read_file(log + ".1");
  daemon.signal(SIGTERM);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0);
}

TEST(Log, AnExecdChildDoesNotInheritTheLogFile) {
  ChildFixture f;
  std::string fds = f.dir.file("fds");
  write_file(f.config, "log: { file: preforkd.log }\npools:\n"
                       "  a:\n    command: [/bin/sh, -c, 'ls -l /proc/$$/fd > " + fds +
                           ".tmp && mv " + fds + ".tmp " + fds + " && exec sleep 1000']\n"
                       "    workers: 1\n");
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(fds); })) << read_file(f.dir.file("preforkd.log"));
  std::string listing = read_file(fds);
  EXPECT_NE(listing.find("fds.tmp"), std::string::npos) << listing;  // ls saw its own stdout
  EXPECT_EQ(listing.find("preforkd.log"), std::string::npos) << listing;
}

TEST(Log, ALibraryPoolLogsThroughSpdlogLoggersOfItsOwn) {
  // spdlog and fmt are compiled into libpreforkd (not header-only in every file): a
  // program that links it must still find every logger and sink of spdlog there, here
  // ones preforkd does not use itself.
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");
  std::string own_log = dir.file("own.log");
  write_file(config, "pools:\n  f:\n    function: log_with_own_spdlog_sinks\n    workers: 2\n"
                     "    env: { OWN_LOG: \"" + own_log + "\" }\n");
  Daemon daemon(config, {}, {}, test_inprocess_bin());
  // Each child logs before it reports ready.
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  std::string text = read_file(own_log);
  for (pid_t pid : daemon.children())
    for (const char* sink : {"a file sink", "a rotating file sink", "an async logger"})
      EXPECT_NE(text.find("child " + std::to_string(pid) + " through " + sink), std::string::npos)
          << sink << " of pid " << pid << ":\n" << text;
}

TEST(Log, AChildOfAnotherUserStartsInTheReopenedFileAndSaysWhenItCannotMoveThere) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching to user nobody needs root";
  TempDir dir;     // the log's directory: nobody may not create a file there
  TempDir shared;  // where the test asks a child to log, and the child (nobody) removes the request
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(shared.path().c_str(), 0777), 0);
  std::string config = dir.file("preforkd.yaml");
  std::string log = dir.file("preforkd.log");
  std::string ask = shared.file("ask");
  write_file(config, "log: { file: " + log + " }\npools:\n  f:\n    function: log_when_asked\n"
                     "    workers: 1\n    user: nobody\n    env: { ASK_FILE: \"" + ask + "\" }\n");
  Daemon daemon(config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(wait_until([&] { return file_has(log, "generation 1 ready"); })) << read_file(log);
  ASSERT_TRUE(daemon.wait_children(1)) << read_file(log);
  auto logs_in = [&](pid_t pid, int time, const std::string& file) {
    write_file(ask, "");
    return wait_until([&] {
      return file_has(file, "child " + std::to_string(pid) + " asked to log, time " + std::to_string(time));
    });
  };
  pid_t first = daemon.children().at(0);
  ASSERT_TRUE(logs_in(first, 1, log)) << read_file(log);

  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  daemon.signal(SIGUSR1);
  ASSERT_TRUE(wait_until([&] { return file_has(log, "log file reopened"); })) << read_file(log + ".1");
  // The running child, nobody, cannot open root's new file (0644): it says so once where
  // its lines go on.
  ASSERT_TRUE(logs_in(first, 2, log + ".1")) << "new file:\n" << read_file(log) << "old file:\n" << read_file(log + ".1");
  EXPECT_TRUE(file_has(log + ".1", "pid " + std::to_string(first) + ": cannot open " + log)) << read_file(log + ".1");
  EXPECT_TRUE(file_has(log + ".1", "goes on writing to the file it had")) << read_file(log + ".1");

  // Its replacement comes from the fork server's spare, both forked before the USR1: it
  // moves to the new file while it is still root, and its lines go there.
  ::kill(first, SIGKILL);
  pid_t second = 0;
  ASSERT_TRUE(wait_until([&] {
    auto now = daemon.children();
    second = now.size() == 1 && now[0] != first ? now[0] : 0;
    return second != 0;
  })) << read_file(log);
  EXPECT_TRUE(logs_in(second, 1, log)) << "new file:\n" << read_file(log) << "old file:\n" << read_file(log + ".1");
  EXPECT_FALSE(file_has(log, "goes on writing")) << read_file(log);
}
