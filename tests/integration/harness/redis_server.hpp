// A throwaway redis-server for one test: 127.0.0.1 on a free port, its files in a
// temporary directory, append-only with fsync on every write (a restart loses
// nothing), stopped by PID.
#pragma once

#include <memory>
#include <string>

#include "harness/harness.hpp"

namespace harness {

int free_tcp_port();

// A TCP port on 127.0.0.1 whose connections the kernel completes (listen backlog) and
// nobody ever reads or answers: a database that hangs. Closed with the object.
class SilentServer {
 public:
  SilentServer();
  ~SilentServer();
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class RedisServer {
 public:
  RedisServer();
  ~RedisServer();
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  // redis-cli against this server; returns its stdout.
  std::string cli(const std::vector<std::string>& args) const;
  // SHUTDOWN (it flushes its append-only file), then start it again on the same port.
  void restart();
  pid_t pid() const;  // to pause it (STOP/CONT)

 private:
  void start();
  void stop();
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
};

}  // namespace harness
