// The PostgreSQL source: many hosts share one job table. Claims are one UPDATE over a
// FOR UPDATE SKIP LOCKED sub-select, leases live in locked_by / lease_until, and idle
// workers sleep on LISTEN until an enqueue NOTIFYs them or the next job falls due.
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "preforkd/job_source.hpp"
#include "sources/epoch_ms.hpp"
#include "sources/postgres/pg_connection.hpp"
#include "sources/postgres/pg_queries.hpp"
#include "sources/postgres/pg_schema.hpp"

namespace preforkd::postgres {

struct PostgresSettings {
  std::string url;  // libpq conninfo or postgresql:// URL
  std::string schema = "public";
  std::string table = "preforkd_jobs";
  std::chrono::milliseconds lease{std::chrono::seconds(30)};
  std::chrono::milliseconds keep_done{std::chrono::hours(24)};
  int prefetch = 1;  // jobs leased per claim, 1..1000
};

// Connects, creates the table when missing, and returns the source. Throws SourceError.
std::unique_ptr<JobSource> open_postgres_source(const PostgresSettings& settings,
                                                const std::string& worker_id);

// The source itself, shared by its two halves: postgres_source.cpp (what a worker does:
// claim, report, lease) and postgres_queue_admin.cpp (what preforkctl does: enqueue,
// inspect, retry, delete).
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// Rows per INSERT of a batch: bounded statements, one transaction.
inline constexpr size_t batch_rows = 5000;
// How often a busy worker looks for expired leases and old done jobs (an idle one
// also wakes at the next lease expiry).
inline constexpr milliseconds max_reclaim_interval{5000};
inline constexpr milliseconds prune_interval{60000};
// A due job that the claim skipped is being claimed by another worker (its row is
// locked): look again shortly instead of spinning.
inline constexpr milliseconds locked_retry{20};

class PostgresSource final : public JobSource {
 public:
  PostgresSource(const PostgresSettings& settings, std::string worker_id)
      : table_{settings.schema, settings.table},
        sql_(table_, settings.prefetch),
        channel_(table_.channel()),
        lease_(settings.lease),
        keep_done_(settings.keep_done),
        reclaim_interval_(std::clamp(settings.lease / 4, milliseconds(250), max_reclaim_interval)),
        worker_id_(std::move(worker_id)),
        prefetch_(settings.prefetch),
        // A third of the lease: a statement still waiting on a lock then is no use to
        // the lease it keeps (a migration's ALTER TABLE, a LOCK TABLE by hand).
        db_(settings.url, std::max(settings.lease / 3, milliseconds(5000))) {
    prepare_schema(db_, table_);
    // One plan per prepared statement, made once. Left to choose, the server planned
    // claim_batch afresh on every call (its generic estimate for `LIMIT $3` and the
    // arrays looks dearer than a custom plan): that planning was a good part of the
    // server's work per job. Every statement here names its rows by key or by an
    // indexed queue, so the generic plan is the same one.
    db_.exec("SET plan_cache_mode = force_generic_plan", "set plan_cache_mode");
  }
  ~PostgresSource() override;

  std::optional<Job> fetch(std::span<const std::string> queues, milliseconds wait) override;
  void complete(const Job& job) override;
  void fail(const Job& job, std::string_view reason, RetryDecision retry) override;
  void release(const Job& job) override;
  void extend_lease(const Job& job) override;
  milliseconds lease_time() const override { return lease_; }
  EnqueueResult enqueue(const NewJob& job) override { return enqueue_batch({&job, 1}).front(); }
  std::vector<EnqueueResult> enqueue_batch(std::span<const NewJob> jobs) override;
  std::vector<QueueStats> stats() override;
  JobInfo get(const std::string& id) override;
  std::vector<JobInfo> list(const JobFilter& filter) override;
  void retry_now(const std::string& id) override;
  void remove(const std::string& id) override;
  int64_t remove_queue(const std::string& queue, std::span<const JobState> states) override;
  Unsettled take_unsettled() override;

 private:
  // Claims up to prefetch_ due jobs into claimed_ (writing the noted acks with it);
  // true when it got any.
  bool try_claim(std::span<const std::string> queues);
  // The noted acks as the two array parameters of every report. The caller forgets
  // them (pending_acks_.clear()) once its statement went through; a failed one throws,
  // the destructor tries once more, and failing that they run again after the lease.
  std::vector<Param> ack_params() const;
  // Writes the noted acks and gives back claimed_ (attempt not counted).
  void hand_back();
  steady::time_point lease_known_until(steady::time_point sent) const {
    // The lease counts from the server's now() (after `sent`); keep a margin for the
    // clocks and the handing out.
    return sent + lease_ - std::min(lease_ / 10, milliseconds(1000));
  }
  void maintain(bool force_reclaim);
  std::optional<milliseconds> next_due(std::span<const std::string> queues);
  void insert_chunk(std::span<const NewJob> jobs, std::vector<EnqueueResult>& results,
                    std::map<std::string, size_t>& unresolved);
  std::string number(const std::string& id) const;
  static JobInfo read_info(const Result& rows, int row);

  TableName table_;
  Queries sql_;
  std::string channel_;
  milliseconds lease_, keep_done_, reclaim_interval_;
  std::string worker_id_;
  int prefetch_;
  Connection db_;
  bool listening_ = false;
  steady::time_point next_reclaim_{}, next_prune_{};
  // Claimed, leased to this worker, not yet handed out by fetch().
  std::deque<Job> claimed_;
  // Until when the leases of claimed_ are known to hold: a batch that waited past it
  // may have been taken by another worker, so it is given back instead.
  steady::time_point claimed_lease_until_{};
  // Completed jobs (id, when) whose 'done' is written with the next statement.
  std::vector<std::pair<std::string, steady::time_point>> pending_acks_;
};

}  // namespace preforkd::postgres
