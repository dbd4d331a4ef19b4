// A thin RAII layer over the sqlite3 C API: one connection, prepared statements kept
// for the connection's life, and errors as SourceError carrying the file and SQLite's
// own message.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "preforkd/job_source.hpp"

namespace preforkd::sqlite {

class Db;

// One use of a prepared statement. Its destructor resets the statement: a statement
// left in the middle of its rows keeps a read transaction open, and SQLite then
// answers BEGIN IMMEDIATE with SQLITE_BUSY at once instead of waiting busy_timeout.
class Statement {
 public:
  Statement(Db& db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement() { reset(); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, std::string_view value);
  Statement& bind_null(int index);
  // Steps once; true when a row is available.
  bool step();
  // Runs to completion (for statements that return no rows).
  void run();
  int64_t int_column(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text_column(int column) const;
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  void reset();

 private:
  Db& db_;
  sqlite3_stmt* stmt_;
};

class Db {
 public:
  // Opens (creating when allowed) the file; throws SourceError with a clear message.
  Db(const std::string& path, std::chrono::milliseconds busy_timeout);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  const std::string& path() const { return path_; }
  void exec(const char* sql);
  // exec, but SQLITE_BUSY is retried until busy_timeout has passed. For statements
  // that SQLite answers with SQLITE_BUSY at once instead of calling the busy handler
  // (switching a new file to WAL while another connection reads it).
  void exec_retrying_busy(const char* sql);
  // Cached by SQL text for the connection's life; each use is reset when it ends.
  Statement prepare(const char* sql);
  int64_t changes() const { return sqlite3_changes64(db_); }
  [[noreturn]] void fail(int rc, std::string_view what) const;

 private:
  // sqlite3_exec; on failure, fail() reads SQLite's text from the connection.
  int try_exec(const char* sql);

  std::string path_;
  std::chrono::milliseconds busy_timeout_;
  sqlite3* db_ = nullptr;
  std::map<const char*, sqlite3_stmt*> statements_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when an exception leaves the scope. IMMEDIATE
// takes the write lock up front: a deferred transaction that upgrades from read to write
// can fail with SQLITE_BUSY without waiting for the busy timeout.
class WriteTransaction {
 public:
  explicit WriteTransaction(Db& db);
  ~WriteTransaction();
  void commit();

 private:
  Db& db_;
  bool open_ = true;
};

}  // namespace preforkd::sqlite
