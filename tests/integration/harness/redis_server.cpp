// The test harness's redis-server (see redis_server.hpp).
#include "harness/redis_server.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace harness {

int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

SilentServer::SilentServer() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd_, 64) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
}

SilentServer::~SilentServer() { ::close(fd_); }

RedisServer::RedisServer() : port_(free_tcp_port()) { start(); }

RedisServer::~RedisServer() { stop(); }

void RedisServer::start() {
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind",
                               "127.0.0.1", "--dir", dir_.path(), "--appendonly", "yes",
                               "--appendfsync", "always", "--save", "", "--daemonize", "no",
                               "--protected-mode", "yes"},
      dir_.file("redis.log"));
  bool up = wait_until([&] { return cli({"PING"}) == "PONG\n"; }, 20s);
  if (!up) throw std::runtime_error("redis-server did not start: " + read_file(dir_.file("redis.log")));
}

void RedisServer::stop() {
  if (!process_) return;
  process_->signal(SIGTERM);  // redis-server flushes and exits on TERM
  if (!process_->wait_exit(20s)) process_->signal(SIGKILL);
  process_.reset();
}

void RedisServer::restart() {
  stop();
  start();
}

std::string RedisServer::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"/usr/bin/redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, "", {}, 20s).out;
}

pid_t RedisServer::pid() const { return process_ ? process_->pid() : -1; }

}  // namespace harness
