// The log file and USR1: a reopen that fails keeps the daemon and its children, forked
// job workers follow a reopen, and an exec'd child never holds the log file open. And a
// library pool's own spdlog loggers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include "harness/harness.hpp"
#include "harness/jobs_harness.hpp"

using namespace harness;

namespace {

bool file_has(const std::string& path, const std::string& needle) {
  return read_file(path).find(needle) != std::string::npos;
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
