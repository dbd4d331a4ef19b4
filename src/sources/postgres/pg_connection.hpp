// One libpq connection: connect with timeouts and TCP keepalives, statements prepared
// once per connection, LISTEN notifications and the poll() that waits for them, and
// every failure as SourceError naming host:port/db (never the password).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "preforkd/job_source.hpp"

namespace preforkd::postgres {

// One statement parameter as text; nullopt is SQL NULL.
using Param = std::optional<std::string>;

// The rows (or the command status) of one statement.
class Result {
 public:
  explicit Result(PGresult* result) : result_(result) {}
  ~Result() { if (result_) PQclear(result_); }
  Result(Result&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const { return PQntuples(result_); }
  bool is_null(int row, int column) const { return PQgetisnull(result_, row, column); }
  std::string text(int row, int column) const { return PQgetvalue(result_, row, column); }
  int64_t integer(int row, int column) const;
  // Rows an UPDATE / DELETE / INSERT touched.
  int64_t affected() const;

 private:
  PGresult* result_;
};

class Connection {
 public:
  // `conninfo`: "host=... dbname=..." or a postgresql:// URL. Throws SourceError.
  // `lock_wait`: the session's lock_timeout (0: the server's), so that a table someone
  // holds locked fails a statement then instead of holding a worker, or preforkctl, for
  // as long as the lock lasts.
  explicit Connection(const std::string& conninfo, std::chrono::milliseconds lock_wait = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // "host:port/db", for messages.
  const std::string& label() const { return label_; }

  // Plain SQL, no parameters (may hold several statements).
  Result exec(const std::string& sql, std::string_view what);
  // One statement with parameters, not prepared (migration, rare requests).
  Result exec(const std::string& sql, const std::vector<Param>& params, std::string_view what);
  // Prepared under `name` on first use and kept for the connection's life.
  Result run(const std::string& name, const std::string& sql, const std::vector<Param>& params,
             std::string_view what);
  // The same, waiting at most `limit` for the answer: a table someone else holds locked,
  // or a server that stopped answering, fails it then (and closes the connection, whose
  // statement is still in flight) instead of holding the caller.
  Result run_within(const std::string& name, const std::string& sql, const std::vector<Param>& params,
                    std::string_view what, std::chrono::milliseconds limit);

  // Notifications that arrived so far (their payloads), read without waiting.
  std::vector<std::string> take_notifications();
  // Forgets the notifications libpq has already read (with the replies of earlier
  // statements) without reading the socket: no system call. Returns how many.
  size_t drop_parsed_notifications();
  // The connection is up as far as libpq knows (no I/O).
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }

  enum class Wake { notified, timeout, interrupted };
  // Sleeps in poll() on the connection's socket and `interrupt_fd` until a notification
  // that `wanted` accepts, `timeout`, or `interrupt_fd` becomes readable.
  Wake wait(std::chrono::milliseconds timeout, int interrupt_fd,
            const std::function<bool(const std::string& payload)>& wanted);

  [[noreturn]] void fail(std::string_view what, std::string_view detail) const;
  // The result of what was sent (the last one), waiting until `deadline`.
  PGresult* result_by(std::chrono::steady_clock::time_point deadline, std::string_view what,
                      std::chrono::milliseconds limit);

 private:
  Result check(PGresult* result, std::string_view what);

  PGconn* conn_ = nullptr;
  std::string label_;
  std::set<std::string> prepared_;
};

// BEGIN ... COMMIT, rolled back when an exception leaves the scope.
class Transaction {
 public:
  explicit Transaction(Connection& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& db_;
  bool open_ = true;
};

}  // namespace preforkd::postgres
