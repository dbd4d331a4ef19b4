// A throwaway PostgreSQL server for the integration tests: its own data directory (a
// copy of one initdb per test process), 127.0.0.1 on a free port, run as an
// unprivileged user when the tests run as root, stopped by PID. A server that cannot
// start is an exception (a test failure), never a skip.
#pragma once

#include <sys/types.h>

#include <string>

#include "harness/harness.hpp"

namespace harness {

class PostgresServer {
 public:
  PostgresServer();   // initialised and accepting connections, or throws
  ~PostgresServer();  // fast shutdown, KILL if it lingers
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // postgresql://postgres@127.0.0.1:PORT/postgres
  std::string url() const;

  // Fast shutdown (clients are disconnected) and wait for the postmaster to exit.
  void stop();
  // Start again on the same port and data; waits until it accepts connections.
  void start();
  void restart() {
    stop();
    start();
  }

  // One statement as the superuser; the first column of the first row ("" if none).
  // Throws std::runtime_error with the server's message.
  std::string query(const std::string& sql) const;
  std::string log() const { return read_file(log_path_); }

 private:
  TempDir dir_;
  std::string data_dir_, socket_dir_, log_path_;
  int port_ = 0;
  pid_t pid_ = -1;
  uid_t uid_;
  gid_t gid_;
};

}  // namespace harness
