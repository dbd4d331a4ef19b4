// A throwaway redis-server for one test: 127.0.0.1 on a free port, its files in a
// temporary directory, append-only with fsync on every write (a restart loses
// nothing), stopped by PID.
#pragma once

#include <memory>
#include <string>

#include "harness/harness.hpp"

namespace harness {

int free_tcp_port();

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

 private:
  void start();
  void stop();
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
};

}  // namespace harness
