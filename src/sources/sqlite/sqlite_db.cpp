// sqlite3 connection, statements and transactions (see sqlite_db.hpp).
#include "sources/sqlite/sqlite_db.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

namespace preforkd::sqlite {
namespace {

// What an error message calls a statement: its first words, up to a line end or '('.
std::string statement_label(std::string_view sql) {
  sql.remove_prefix(std::min(sql.size(), sql.find_first_not_of(" \n")));
  return std::string(sql.substr(0, sql.find_first_of("\n(")));
}

}  // namespace

Statement& Statement::bind(int index, int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK) db_.fail(rc, "bind");
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  if (int rc = sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                   SQLITE_UTF8);
      rc != SQLITE_OK)
    db_.fail(rc, "bind");
  return *this;
}

Statement& Statement::bind_null(int index) {
  if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK) db_.fail(rc, "bind");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string sql = sqlite3_sql(stmt_) ? sqlite3_sql(stmt_) : "?";
  sqlite3_reset(stmt_);
  db_.fail(rc, statement_label(sql));
}

void Statement::run() {
  while (step()) {
  }
}

std::string Statement::text_column(int column) const {
  auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  return text ? std::string(text, sqlite3_column_bytes(stmt_, column)) : std::string();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

namespace {

// What to do about a file SQLite could not open or write, from the system's own error:
// the same SQLite code comes of a permission, of too many open files, of a read-only
// mount.
std::string open_advice(sqlite3* db, const std::string& path) {
  int err = db ? sqlite3_system_errno(db) : 0;
  if (err == EMFILE || err == ENFILE)
    return " (" + std::string(std::strerror(err)) +
           ": the open-file limit is reached; raise it: ulimit -n, or LimitNOFILE= under systemd)";
  struct statvfs fs {};
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (err == EROFS || (::statvfs(dir.empty() ? "." : dir.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY)))
    return " (" + (dir.empty() ? std::string(".") : dir) +
           " is on a read-only file system: give the source a 'path' on a writable one)";
  return " (check that the file and its directory are writable by this user)";
}

}  // namespace

Db::Db(const std::string& path, std::chrono::milliseconds busy_timeout)
    : path_(path), busy_timeout_(busy_timeout) {
  int rc = sqlite3_open_v2(path.c_str(), &db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)) + open_advice(db_, path);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw SourceError("sqlite " + path + ": cannot open: " + message);
  }
  if (sqlite3_db_readonly(db_, "main") == 1) {
    // SQLite falls back to reading a file it may not write, and every write fails later:
    // a worker would reconnect for ever. Refused here, where the source is first opened.
    std::string advice = open_advice(db_, path);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    if (advice.find("read-only file system") != std::string::npos)
      throw SourceError("sqlite " + path + ": can only be opened read-only" + advice);
    throw SourceError("sqlite " + path + ": can only be opened read-only by this user (uid " +
                      std::to_string(::geteuid()) +
                      "); make the file and its directory writable by the user the pool runs as");
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
}

Db::~Db() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

int Db::try_exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

void Db::exec(const char* sql) {
  if (int rc = try_exec(sql); rc != SQLITE_OK) fail(rc, statement_label(sql));
}

void Db::exec_retrying_busy(const char* sql) {
  using namespace std::chrono;
  const auto deadline = steady_clock::now() + busy_timeout_;
  auto pause = milliseconds(1);
  for (;;) {
    int rc = try_exec(sql);
    if (rc == SQLITE_OK) return;
    if ((rc & 0xff) != SQLITE_BUSY || steady_clock::now() + pause > deadline) fail(rc, statement_label(sql));
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, milliseconds(50));
  }
}

Statement Db::prepare(const char* sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
        rc != SQLITE_OK)
      fail(rc, "prepare");
    it = statements_.emplace(sql, stmt).first;
  }
  return Statement(*this, it->second);
}

void Db::fail(int rc, std::string_view what) const {
  std::string message = "sqlite " + path_ + ": " + std::string(what) + ": " +
                        (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)) +
                        " [code " + std::to_string(rc) + "]";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: message += " (another process holds the database longer than busy_timeout)"; break;
    case SQLITE_FULL: message += " (disk full: free space; this write was rolled back, nothing half-done)"; break;
    case SQLITE_IOERR:
      if (rc == SQLITE_IOERR_SHMOPEN || rc == SQLITE_IOERR_SHMSIZE || rc == SQLITE_IOERR_SHMMAP)
        message += " (cannot make or grow " + path_ + "-shm, the WAL index kept beside the database: " +
                   "free space on its file system, and check that the directory is writable)";
      else
        message += " (the file system failed a read or write of the database or its -wal file: check "
                   "free space and the kernel log; this write was rolled back)";
      break;
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM: message += open_advice(db_, path_); break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: message += " (not a usable SQLite database: restore it from a backup, or give the source a 'path' elsewhere; a source with no 'path', such as the default one, uses var/jobs.db beside the config)"; break;
    default: break;
  }
  throw SourceError(message);
}

WriteTransaction::WriteTransaction(Db& db) : db_(db) { db_.prepare("BEGIN IMMEDIATE").run(); }

WriteTransaction::~WriteTransaction() {
  if (!open_) return;
  try {
    db_.prepare("ROLLBACK").run();
  } catch (...) {
    // The transaction may already be gone (SQLite rolls back on some errors itself).
  }
}

void WriteTransaction::commit() {
  db_.prepare("COMMIT").run();
  open_ = false;
}

}  // namespace preforkd::sqlite
