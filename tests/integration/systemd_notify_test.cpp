// The sd_notify protocol as systemd sees it: the test owns the NOTIFY_SOCKET.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "harness/harness.hpp"
#include "harness/redis_server.hpp"

using namespace harness;

namespace {

class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("bind " + path_);
  }
  ~NotifySocket() { ::close(fd_); }
  const std::string& path() const { return path_; }

  // Waits for a message containing `needle`; every message read is kept in history().
  bool wait_for(const std::string& needle, Millis timeout = 15s) {
    return wait_until([&] {
      drain();
      for (size_t i = checked_; i < history_.size(); ++i) {
        if (history_[i].find(needle) != std::string::npos) {
          checked_ = i + 1;
          return true;
        }
      }
      return false;
    }, timeout);
  }
  const std::vector<std::string>& history() { drain(); return history_; }

 private:
  void drain() {
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd_, buffer, sizeof buffer, 0)) > 0;)
      history_.emplace_back(buffer, n);
  }
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> history_;
  size_t checked_ = 0;
};

}  // namespace

TEST(SystemdNotify, ReadyReloadingStoppingAndStatusAreSentInOrder) {
  TempDir dir;
  NotifySocket notify(dir.file("notify"));
  std::string config = dir.file("preforkd.yaml");
  write_file(config, "pools:\n" + child_pool("a", {"idle"}, 3));
  Daemon daemon(config, {"NOTIFY_SOCKET=" + notify.path()});

  ASSERT_TRUE(notify.wait_for("READY=1")) << daemon.output();
  // READY comes only once every child is up, and says so in the same message: found by
  // a probe, the last STATUS before it said "0/3 up" for a second (STATUS is sent at
  // most once a second).
  EXPECT_EQ(daemon.children().size(), 3u);
  std::string status_at_ready;  // the last STATUS sent up to the first READY, with it
  for (const auto& message : notify.history()) {
    if (auto at = message.find("STATUS="); at != std::string::npos) status_at_ready = message.substr(at);
    if (message.find("READY=1") != std::string::npos) break;
  }
  EXPECT_EQ(status_at_ready.rfind("STATUS=generation 1: a 3/3 up", 0), 0u)
      << ::testing::PrintToString(notify.history());

  daemon.signal(SIGHUP);
  ASSERT_TRUE(notify.wait_for("RELOADING=1"));
  ASSERT_TRUE(notify.wait_for("READY=1")) << daemon.output();

  // A bad file still ends the reload with READY=1 (the old config runs on).
  write_file(config, "pools: [oops\n");
  daemon.signal(SIGHUP);
  ASSERT_TRUE(notify.wait_for("RELOADING=1"));
  ASSERT_TRUE(notify.wait_for("READY=1"));

  daemon.signal(SIGTERM);
  ASSERT_TRUE(notify.wait_for("STOPPING=1"));
  auto status = daemon.wait_exit();
  ASSERT_TRUE(status && WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

TEST(SystemdNotify, AFailedReloadDoesNotSayReadyForAGenerationNotYetUp) {
  TempDir dir;
  NotifySocket notify(dir.file("notify"));
  std::string config = dir.file("preforkd.yaml");
  // Its child never reports ready.
  write_file(config, "pools:\n  a: { function: never_ready, workers: 1 }\n");
  Daemon daemon(config, {"NOTIFY_SOCKET=" + notify.path()}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  write_file(config, "pools: [oops\n");
  daemon.signal(SIGHUP);
  ASSERT_TRUE(notify.wait_for("RELOADING=1"));
  ASSERT_TRUE(daemon.wait_output("reload failed")) << daemon.output();
  daemon.signal(SIGTERM);
  // One sender, one datagram socket: anything sent before STOPPING=1 is here by then.
  ASSERT_TRUE(notify.wait_for("STOPPING=1"));
  for (const auto& message : notify.history()) EXPECT_EQ(message.find("READY=1"), std::string::npos) << message;
}

// A reload still checking its sources has not ended: a generation that comes up
// meanwhile does not say READY=1, or `systemctl reload` would return before the new
// file has even been checked.
TEST(SystemdNotify, NoReadyWhileAReloadIsCheckingItsSources) {
  TempDir dir;
  SilentServer hung;
  NotifySocket notify(dir.file("notify"));
  std::string config = dir.file("preforkd.yaml");
  std::string ready_file = dir.file("ready");
  // Generation 1 comes up when the test creates ready_file.
  std::string pool = "  a: { function: ready_when_file_exists, workers: 1, env: { READY_FILE: \"" +
                     ready_file + "\" } }\n";
  write_file(config, "pools:\n" + pool);
  Daemon daemon(config, {"NOTIFY_SOCKET=" + notify.path()}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();

  write_file(config, "sources:\n  r: { type: redis, url: \"redis://127.0.0.1:" +
                         std::to_string(hung.port()) + "/0\", timeout: 120s }\npools:\n" + pool +
                         "  w: { handler: { exec: [/bin/true] }, queues: [q], workers: 1 }\n");
  daemon.signal(SIGHUP);
  ASSERT_TRUE(notify.wait_for("RELOADING=1"));
  ASSERT_TRUE(daemon.wait_output("reload: checking the job sources")) << daemon.output();
  write_file(ready_file, "");
  ASSERT_TRUE(notify.wait_for("STATUS=generation 1: a 1/1 up")) << ::testing::PrintToString(notify.history());
  daemon.signal(SIGTERM);
  ASSERT_TRUE(notify.wait_for("STOPPING=1"));
  for (const auto& message : notify.history()) EXPECT_EQ(message.find("READY=1"), std::string::npos) << message;
}

TEST(SystemdNotify, WatchdogPingsAtHalfTheInterval) {
  TempDir dir;
  NotifySocket notify(dir.file("notify"));
  std::string config = dir.file("preforkd.yaml");
  write_file(config, "pools:\n" + child_pool("a", {"idle"}, 1));
  Daemon daemon(config, {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=200000"});
  ASSERT_TRUE(notify.wait_for("READY=1"));
  ASSERT_TRUE(notify.wait_for("WATCHDOG=1"));
  ASSERT_TRUE(notify.wait_for("WATCHDOG=1"));
  ASSERT_TRUE(notify.wait_for("WATCHDOG=1"));
}

TEST(SystemdNotify, ChildrenDoNotInheritTheNotifySocket) {
  TempDir dir;
  NotifySocket notify(dir.file("notify"));
  std::string config = dir.file("preforkd.yaml");
  write_file(config, "pools:\n" + child_pool("a", {"idle"}, 1));
  Daemon daemon(config, {"NOTIFY_SOCKET=" + notify.path()});
  ASSERT_TRUE(daemon.wait_children(1));
  pid_t child = daemon.children().front();
  std::string environ_text;
  ASSERT_TRUE(wait_until([&] {
    environ_text = read_file("/proc/" + std::to_string(child) + "/environ");
    return environ_text.find("PREFORKD_POOL=a") != std::string::npos;
  }));
  EXPECT_EQ(environ_text.find("NOTIFY_SOCKET"), std::string::npos);
}
