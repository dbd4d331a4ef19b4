// libpq connection, statements, notifications and errors (see pg_connection.hpp).
#include "sources/postgres/pg_connection.hpp"

#include <poll.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "util/log.hpp"

namespace preforkd::postgres {
namespace {

// libpq's messages end in a newline and may span lines: one log line instead.
// libpq's messages run over several lines, the later ones indented with a tab
// ("server closed the connection unexpectedly\n\tThis probably means ..."): one log line,
// each run of line breaks and indentation one space.
std::string one_line(const std::string& text) {
  std::string out;
  for (char c : text) {
    bool space = c == '\n' || c == '\t' || c == '\r' || c == ' ';
    if (!space) out += c;
    else if (!out.empty() && out.back() != ' ') out += ' ';
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void log_notice(void*, const char* message) {
  spdlog::debug("postgres: {}", one_line(message));
}

std::vector<const char*> c_strings(const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return values;
}

}  // namespace

int64_t Result::integer(int row, int column) const {
  return std::strtoll(PQgetvalue(result_, row, column), nullptr, 10);
}

int64_t Result::affected() const { return std::strtoll(PQcmdTuples(result_), nullptr, 10); }

Connection::Connection(const std::string& conninfo, std::chrono::milliseconds lock_wait) {
  // Our defaults first, the operator's conninfo last: libpq keeps the last value of a
  // repeated keyword, so a connect_timeout in the URL wins. The keepalives and
  // tcp_user_timeout turn a server that vanished without a FIN into an error instead
  // of a worker blocked forever in a read.
  // `options` in the conninfo replaces ours, lock_timeout with it.
  const std::string options = lock_wait.count() > 0 ? "-c lock_timeout=" + std::to_string(lock_wait.count()) : "";
  const char* keys[] = {"connect_timeout",  "keepalives",       "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                        "application_name", "options",          "dbname",  nullptr};
  const char* values[] = {"5", "1", "10", "5", "3", "30000", "preforkd", options.c_str(), conninfo.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_) throw SourceError("postgres: out of memory opening a connection");
  const char* host = PQhost(conn_);
  const char* port = PQport(conn_);
  const char* db = PQdb(conn_);
  label_ = std::string(host && *host ? host : "localhost") + ":" + (port && *port ? port : "5432") +
           "/" + (db ? db : "");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string detail = PQerrorMessage(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    throw SourceError("postgres " + label_ + ": cannot connect: " + one_line(detail));
  }
  PQsetNoticeProcessor(conn_, log_notice, nullptr);
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

void Connection::fail(std::string_view what, std::string_view detail) const {
  std::string message = "postgres " + label_ + ": " + std::string(what) + ": " + one_line(std::string(detail));
  if (PQstatus(conn_) == CONNECTION_BAD && message.find("connection") == std::string::npos)
    message += " (connection lost)";
  throw SourceError(message);
}

Result Connection::check(PGresult* result, std::string_view what) {
  ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Result(result);
  std::string detail = result ? PQresultErrorMessage(result) : "";
  if (detail.empty()) detail = PQerrorMessage(conn_);
  if (result) PQclear(result);
  fail(what, detail);
}

Result Connection::exec(const std::string& sql, std::string_view what) {
  return check(PQexec(conn_, sql.c_str()), what);
}

Result Connection::exec(const std::string& sql, const std::vector<Param>& params, std::string_view what) {
  auto values = c_strings(params);
  return check(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0),
               what);
}

Result Connection::run(const std::string& name, const std::string& sql,
                       const std::vector<Param>& params, std::string_view what) {
  if (!prepared_.count(name)) {
    check(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr), what);
    prepared_.insert(name);
  }
  auto values = c_strings(params);
  return check(PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                              nullptr, nullptr, 0),
               what);
}

Result Connection::run_within(const std::string& name, const std::string& sql,
                              const std::vector<Param>& params, std::string_view what,
                              std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  if (!prepared_.count(name)) {
    // Preparing reads the table's definition, so it waits on the same lock.
    if (!PQsendPrepare(conn_, name.c_str(), sql.c_str(), 0, nullptr)) fail(what, PQerrorMessage(conn_));
    check(result_by(deadline, what, limit), what);
    prepared_.insert(name);
  }
  auto values = c_strings(params);
  if (!PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(), nullptr,
                           nullptr, 0))
    fail(what, PQerrorMessage(conn_));
  return check(result_by(deadline, what, limit), what);
}

PGresult* Connection::result_by(std::chrono::steady_clock::time_point deadline, std::string_view what,
                                std::chrono::milliseconds limit) {
  PGresult* last = nullptr;
  for (;;) {
    while (!PQisBusy(conn_)) {
      PGresult* result = PQgetResult(conn_);
      if (!result) return last;
      if (last) PQclear(last);
      last = result;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (last) PQclear(last);
      // The statement is still in flight (a cancel request would wait on a server that
      // does not answer): the connection is given up, and the caller's source with it.
      PQfinish(conn_);
      conn_ = nullptr;
      fail(what, "no answer within " + std::to_string(limit.count()) +
                     "ms (a table held locked, or a server that stopped answering); connection closed");
    }
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    int n = ::poll(&fd, 1, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) {
      if (last) PQclear(last);
      throw SourceError("postgres " + label_ + ": " + syscall_error("poll", "connection socket", errno));
    }
    if (n > 0 && !PQconsumeInput(conn_)) {
      if (last) PQclear(last);
      fail(what, PQerrorMessage(conn_));
    }
  }
}

std::vector<std::string> Connection::take_notifications() {
  if (!PQconsumeInput(conn_)) fail("read notifications", PQerrorMessage(conn_));
  std::vector<std::string> payloads;
  while (PGnotify* notify = PQnotifies(conn_)) {
    payloads.emplace_back(notify->extra ? notify->extra : "");
    PQfreemem(notify);
  }
  return payloads;
}

size_t Connection::drop_parsed_notifications() {
  size_t dropped = 0;
  while (PGnotify* notify = PQnotifies(conn_)) {
    ++dropped;
    PQfreemem(notify);
  }
  return dropped;
}

Connection::Wake Connection::wait(std::chrono::milliseconds timeout, int interrupt_fd,
                                  const std::function<bool(const std::string&)>& wanted) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  for (;;) {
    // PQnotifies also parses what an earlier statement left in libpq's buffer: such a
    // notification would never make the socket readable again.
    bool woken = false;
    while (PGnotify* notify = PQnotifies(conn_)) {
      woken |= wanted(notify->extra ? notify->extra : "");
      PQfreemem(notify);
    }
    if (woken) return Wake::notified;
    auto left = std::chrono::duration<double, std::milli>(deadline - clock::now()).count();
    if (left <= 0) return Wake::timeout;
    int socket = PQsocket(conn_);
    if (socket < 0 || PQstatus(conn_) != CONNECTION_OK) fail("wait for jobs", PQerrorMessage(conn_));
    pollfd fds[2] = {{socket, POLLIN, 0}, {interrupt_fd, POLLIN, 0}};
    int n = ::poll(fds, interrupt_fd >= 0 ? 2 : 1, static_cast<int>(std::ceil(std::min(left, 3.6e6))));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SourceError("postgres " + label_ + ": " + syscall_error("poll", "connection socket", errno));
    }
    if (interrupt_fd >= 0 && fds[1].revents) return Wake::interrupted;
    // Readable: a notification, or the server going away (then consuming fails).
    if (fds[0].revents && !PQconsumeInput(conn_)) fail("wait for jobs", PQerrorMessage(conn_));
    if (PQstatus(conn_) != CONNECTION_OK) fail("wait for jobs", PQerrorMessage(conn_));
  }
}

Transaction::Transaction(Connection& db) : db_(db) { db_.exec("BEGIN", "begin a transaction"); }

Transaction::~Transaction() {
  if (!open_) return;
  try {
    db_.exec("ROLLBACK", "roll back");
  } catch (const SourceError&) {
    // The connection is gone; the server rolls back on its own.
  }
}

void Transaction::commit() {
  open_ = false;
  try {
    db_.exec("COMMIT", "commit");
  } catch (const SourceError& e) {
    // An error answer means not committed; no answer (the connection broke after the
    // COMMIT went out) may mean either.
    if (!db_.ok()) throw OutcomeUnknown(e.what());
    throw;
  }
}

}  // namespace preforkd::postgres
