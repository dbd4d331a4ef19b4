// The SQLite source's class, shared by its two halves: sqlite_source.cpp (what a
// worker does: claim, finish, lease) and sqlite_queue_admin.cpp (what preforkctl does:
// enqueue, inspect, retry, delete). See sqlite_source.cpp for how it works.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "preforkd/config.hpp"
#include "preforkd/job_source.hpp"
#include "sources/epoch_ms.hpp"
#include "sources/source_settings.hpp"
#include "sources/sqlite/sqlite_db.hpp"
#include "sources/sqlite/sqlite_schema.hpp"
#include "util/file_change_watch.hpp"

namespace preforkd::sqlite {

using std::chrono::milliseconds;

inline constexpr const char* default_path = "var/jobs.db";

class SqliteSource final : public JobSource {
 public:
  SqliteSource(const SourceConfig& config, std::string worker_id)
      : path_(database_path(config)),
        lease_(setting(config, "lease", milliseconds(std::chrono::seconds(30)))),
        keep_done_(setting(config, "keep_done", milliseconds(std::chrono::hours(24)))),
        worker_id_(std::move(worker_id)),
        prefetch_(prefetch_setting(config)),
        db_(open(path_, setting(config, "busy_timeout", milliseconds(std::chrono::seconds(10))))),
        file_(file_identity(path_)) {}
  ~SqliteSource() override;

  std::optional<Job> fetch(std::span<const std::string> queues, milliseconds wait) override;
  void complete(const Job& job) override;
  void fail(const Job& job, std::string_view reason, RetryDecision retry) override;
  void release(const Job& job) override;
  void extend_lease(const Job& job) override;
  Unsettled take_unsettled() override;
  milliseconds lease_time() const override { return lease_; }
  EnqueueResult enqueue(const NewJob& job) override;
  std::vector<EnqueueResult> enqueue_batch(std::span<const NewJob> jobs) override;
  std::vector<QueueStats> stats() override;
  JobInfo get(const std::string& id) override;
  std::vector<JobInfo> list(const JobFilter& filter) override;
  void retry_now(const std::string& id) override;
  void remove(const std::string& id) override;
  int64_t remove_queue(const std::string& queue, std::span<const JobState> states) override;

  static std::string database_path(const SourceConfig& config) {
    auto it = config.settings.find("path");
    std::string path = it == config.settings.end() ? default_path : it->second;
    return path.front() == '/' ? path : config.base_dir + "/" + path;
  }

 private:
  static int prefetch_setting(const SourceConfig& config) {
    auto it = config.settings.find("prefetch");
    return it == config.settings.end() ? 1 : std::stoi(it->second);
  }
  static milliseconds setting(const SourceConfig& config, const char* key, milliseconds fallback) {
    auto it = config.settings.find(key);
    return it == config.settings.end() ? fallback : parse_duration(it->second);
  }
  static std::unique_ptr<Db> open(const std::string& path, milliseconds busy_timeout) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    if (ec)
      throw SourceError("sqlite " + path + ": cannot create or reach its directory: " + ec.message() +
                        " (uid " + std::to_string(::geteuid()) +
                        " needs to search every directory above it, and to write the last one)");
    // SQLite would say "unable to open database file", and the advice on permissions
    // that goes with it sends the operator the wrong way.
    if (std::filesystem::is_directory(path, ec))
      throw SourceError("sqlite " + path + ": is a directory: give the path of the database file (such as " +
                        path + "/jobs.db)");
    auto db = std::make_unique<Db>(path, busy_timeout);
    prepare_schema(*db);
    return db;
  }

  // Claims up to prefetch_ due jobs into claimed_; true when it got any.
  bool try_claim(std::span<const std::string> queues);
  // How many of `queue`'s first `wanted` due jobs a batch may take, and whether the batch
  // must end there: it stops before a suspect job (one whose lease ran out before),
  // which is claimed alone when it comes first (`first`: nothing claimed yet).
  std::pair<int64_t, bool> claim_cut(const std::string& queue, int64_t now, int64_t wanted, bool first);
  // Writes the noted completions; call inside a WriteTransaction, and forget them
  // (pending_acks_.clear()) only once it has committed.
  void write_acks();
  // Gives back the claimed jobs not yet handed out; call inside a WriteTransaction, and
  // clear claimed_ only once it has committed.
  void write_releases();
  // write_acks + write_releases in one transaction.
  void hand_back_all();
  int64_t next_wake_ms(std::span<const std::string> queues);
  FileChangeWatch& watch() {
    if (!watch_) {
      auto file = std::filesystem::path(path_);
      watch_.emplace(file.parent_path().string(), file.filename().string() + "-wal");
    }
    return *watch_;
  }
  // The file PATH names now (device, inode), or {0, 0} when there is none.
  static std::pair<dev_t, ino_t> file_identity(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {0, 0};
    return {st.st_dev, st.st_ino};
  }
  // Throws SourceError when the path no longer names the file this connection has open:
  // deleted (and maybe made anew by preforkctl) or replaced (a restore). The worker then
  // reconnects to what the path names; new jobs would otherwise wait in a file it never
  // looks at, until a reload.
  void check_still_the_file() const {
    if (file_identity(path_) != file_)
      throw SourceError("sqlite " + path_ + ": the database file was deleted or replaced while " +
                        "open; opening the one the path names now");
  }
  int64_t job_id(const Job& job) const { return std::stoll(job.id); }
  void finish(const Job& job, const char* sql, std::string_view error, int64_t run_at);
  static JobInfo read_info(const Statement& row);

  std::string path_;
  milliseconds lease_;
  milliseconds keep_done_;
  std::string worker_id_;
  int prefetch_;
  std::unique_ptr<Db> db_;
  std::pair<dev_t, ino_t> file_;  // what path_ named when db_ was opened
  std::optional<FileChangeWatch> watch_;
  int64_t next_prune_ms_ = 0;
  // Claimed, leased to this worker, not yet handed out by fetch().
  std::deque<Job> claimed_;
  // Until when (steady clock) the leases of claimed_ are known to hold: a batch that
  // waited past it may have been taken by another worker, so it is given back instead.
  std::chrono::steady_clock::time_point claimed_lease_until_;
  // Completed jobs (id, finished_at) whose 'done' is written with the next transaction.
  std::vector<std::pair<int64_t, int64_t>> pending_acks_;
};

}  // namespace preforkd::sqlite
