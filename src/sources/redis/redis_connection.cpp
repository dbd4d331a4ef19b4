// hiredis connection (see redis_connection.hpp).
#include "sources/redis/redis_connection.hpp"

#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace preforkd::redis {
namespace {

int parse_number(std::string_view text, const char* what) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0)
    throw std::invalid_argument(std::string(what) + " '" + std::string(text) + "' is not a number");
  return value;
}

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

}  // namespace

RedisUrl parse_redis_url(const std::string& text) {
  const std::string scheme = "redis://";
  if (text.rfind(scheme, 0) != 0)
    throw std::invalid_argument("'" + text + "' must start with redis:// (redis://[:password@]host[:port][/db])");
  std::string rest = text.substr(scheme.size());
  RedisUrl url;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string credentials = rest.substr(0, at);
    url.password = credentials.substr(credentials.find(':') == std::string::npos ? 0 : credentials.find(':') + 1);
    rest = rest.substr(at + 1);
  }
  std::string hostport = rest.substr(0, rest.find('/'));
  if (auto slash = rest.find('/'); slash != std::string::npos && slash + 1 < rest.size())
    url.db = parse_number(std::string_view(rest).substr(slash + 1), "database");
  if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
    url.port = parse_number(std::string_view(hostport).substr(colon + 1), "port");
    hostport = hostport.substr(0, colon);
  }
  if (!hostport.empty()) url.host = hostport;
  if (url.port == 0 || url.port > 65535) throw std::invalid_argument("port " + std::to_string(url.port) + " is out of range");
  return url;
}

Connection::Connection(const RedisUrl& url, std::chrono::milliseconds timeout)
    : url_(url), timeout_(timeout) {
  context_ = redisConnectWithTimeout(url.host.c_str(), url.port, to_timeval(timeout));
  if (!context_) throw SourceError("redis " + url.display() + ": cannot allocate a connection");
  if (context_->err) {
    std::string error = context_->errstr;
    redisFree(context_);
    context_ = nullptr;
    throw SourceError("redis " + url.display() + ": cannot connect: " + error);
  }
  redisSetTimeout(context_, to_timeval(timeout));
  redisEnableKeepAlive(context_);
  if (!url.password.empty()) command({"AUTH", url.password});
  if (url.db != 0) command({"SELECT", std::to_string(url.db)});
}

Connection::~Connection() {
  if (context_) redisFree(context_);
}

void Connection::fail(const std::string& what) const {
  throw SourceError("redis " + url_.display() + ": " + what);
}

std::string Connection::io_error() const {
  // hiredis 0.14 reports a read past SO_RCVTIMEO as an I/O error with strerror(EAGAIN)
  // (errno itself may be stale: a context already in error fails without a system call).
  if (context_->err == REDIS_ERR_IO && std::strcmp(context_->errstr, std::strerror(EAGAIN)) == 0)
    return "no answer within the source's timeout (" + std::to_string(timeout_.count()) + "ms)";
  return context_->errstr[0] ? context_->errstr : "connection lost";
}

Reply Connection::command(const std::vector<std::string>& argv, bool allow_error) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const auto& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  Reply reply(static_cast<redisReply*>(
      redisCommandArgv(context_, static_cast<int>(args.size()), args.data(), lengths.data())));
  if (!reply) fail(argv.front() + ": " + io_error());
  if (reply->type == REDIS_REPLY_ERROR && !allow_error)
    fail(argv.front() + ": " + std::string(reply->str, reply->len));
  return reply;
}

void Connection::send(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const auto& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  if (redisAppendCommandArgv(context_, static_cast<int>(args.size()), args.data(), lengths.data()) != REDIS_OK)
    fail(argv.front() + ": " + context_->errstr);
  int done = 0;
  while (!done)
    if (redisBufferWrite(context_, &done) != REDIS_OK) fail(argv.front() + ": " + context_->errstr);
}

std::vector<Reply> Connection::pipeline(const std::vector<std::vector<std::string>>& commands) {
  for (const auto& argv : commands) {
    std::vector<const char*> args;
    std::vector<size_t> lengths;
    for (const auto& arg : argv) {
      args.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(args.size()), args.data(), lengths.data()) != REDIS_OK)
      fail(argv.front() + ": " + context_->errstr);
  }
  std::vector<Reply> replies;
  for (const auto& argv : commands) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || !raw) fail(argv.front() + ": " + io_error());
    Reply reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR) fail(argv.front() + ": " + std::string(reply->str, reply->len));
    replies.push_back(std::move(reply));
  }
  return replies;
}

Reply Connection::read_one() {
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || !raw)
    fail("read: " + io_error());
  return Reply(static_cast<redisReply*>(raw));
}

std::vector<Reply> Connection::read_available() {
  if (redisBufferRead(context_) != REDIS_OK)
    fail("read: " + io_error());
  std::vector<Reply> replies;
  for (;;) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) fail("read: protocol error");
    if (!raw) break;
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

std::string reply_string(const redisReply* reply) {
  if (!reply) return "";
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: return std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER: return std::to_string(reply->integer);
    default: return "";
  }
}

}  // namespace preforkd::redis
