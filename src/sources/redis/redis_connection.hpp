// One hiredis connection with the URL form operators write (redis://[:password@]host
// [:port][/db]), commands as argv, replies owned by RAII, and every failure as a
// SourceError naming the server (never the password).
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "preforkd/job_source.hpp"

namespace preforkd::redis {

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string password;
  std::string display() const { return host + ":" + std::to_string(port) + "/" + std::to_string(db); }
};

// Throws std::invalid_argument with what is wrong.
RedisUrl parse_redis_url(const std::string& url);

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

class Connection {
 public:
  Connection(const RedisUrl& url, std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends and waits; a Redis error reply throws too (use `allow_error` to get it back).
  Reply command(const std::vector<std::string>& argv, bool allow_error = false);
  // Pipelined: every command sent, then every reply read.
  std::vector<Reply> pipeline(const std::vector<std::vector<std::string>>& commands);

  // Subscriber side: send without waiting, and read what has arrived.
  void send(const std::vector<std::string>& argv);
  int fd() const { return context_->fd; }
  // Reads whatever the socket has (call when poll() says readable); returns the
  // complete replies (pub/sub messages) it held.
  std::vector<Reply> read_available();
  Reply read_one();  // blocking

  [[noreturn]] void fail(const std::string& what) const;
  const RedisUrl& url() const { return url_; }

 private:
  // Why the last call failed, as an operator should read it: a server that does not
  // answer in time is named as such, not as hiredis's "Resource temporarily unavailable".
  std::string io_error() const;

  RedisUrl url_;
  std::chrono::milliseconds timeout_;
  redisContext* context_ = nullptr;
};

std::string reply_string(const redisReply* reply);  // string/status/integer as text

}  // namespace preforkd::redis
