// The PostgreSQL JobSource (see postgres_source.hpp): claim, lease, report, enqueue and
// the operator views, each one prepared statement on this worker's own connection.
#include "sources/postgres/postgres_source.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include "sources/postgres/pg_array.hpp"
#include "sources/postgres/pg_connection.hpp"
#include "sources/postgres/pg_queries.hpp"
#include "sources/postgres/pg_schema.hpp"

namespace preforkd::postgres {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// Rows per INSERT of a batch: bounded statements, one transaction.
constexpr size_t batch_rows = 5000;
// How often a busy worker looks for expired leases and old done jobs (an idle one
// also wakes at the next lease expiry).
constexpr milliseconds max_reclaim_interval{5000};
constexpr milliseconds prune_interval{60000};
// A due job that the claim skipped is being claimed by another worker (its row is
// locked): look again shortly instead of spinning.
constexpr milliseconds locked_retry{20};

SystemTime from_ms(int64_t ms) { return SystemTime(milliseconds(ms)); }

class PostgresSource final : public JobSource {
 public:
  PostgresSource(const PostgresSettings& settings, std::string worker_id)
      : table_{settings.schema, settings.table},
        sql_(table_),
        channel_(table_.channel()),
        lease_(settings.lease),
        keep_done_(settings.keep_done),
        reclaim_interval_(std::clamp(settings.lease / 4, milliseconds(250), max_reclaim_interval)),
        worker_id_(std::move(worker_id)),
        db_(settings.url) {
    prepare_schema(db_, table_);
  }

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

 private:
  std::optional<Job> claim(const std::string& queue);
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
  Connection db_;
  bool listening_ = false;
  steady::time_point next_reclaim_{}, next_prune_{};
};

std::optional<Job> PostgresSource::claim(const std::string& queue) {
  auto row = db_.run("claim", sql_.claim, {queue, worker_id_, std::to_string(lease_.count())},
                     "claim a job from queue " + queue);
  if (row.rows() == 0) return std::nullopt;
  return Job{row.text(0, 0), queue, row.text(0, 1), static_cast<int>(row.integer(0, 2)),
             static_cast<int>(row.integer(0, 3)), static_cast<int>(row.integer(0, 4)), worker_id_};
}

void PostgresSource::maintain(bool force_reclaim) {
  auto now = steady::now();
  if (force_reclaim || now >= next_reclaim_) {
    db_.run("reclaim", sql_.reclaim, {channel_}, "take back expired leases");
    next_reclaim_ = now + reclaim_interval_;
  }
  if (now >= next_prune_) {
    db_.run("prune", sql_.prune, {std::to_string(keep_done_.count())}, "delete old done jobs");
    next_prune_ = now + prune_interval;
  }
}

std::optional<milliseconds> PostgresSource::next_due(std::span<const std::string> queues) {
  auto row = db_.run("next_due", sql_.next_due,
                     {array_literal(std::vector<std::string>(queues.begin(), queues.end()))},
                     "look up the next due time");
  if (row.is_null(0, 0)) return std::nullopt;
  return milliseconds(row.integer(0, 0));
}

std::optional<Job> PostgresSource::fetch(std::span<const std::string> queues, milliseconds wait) {
  const auto deadline = steady::now() + wait;
  if (!listening_) {
    db_.exec("LISTEN " + TableName::quote(channel_), "listen for new jobs");
    listening_ = true;
  }
  auto wanted = [&](const std::string& queue) {
    return queue.empty() || std::find(queues.begin(), queues.end(), queue) != queues.end();
  };
  bool force_reclaim = false;
  for (;;) {
    // Forget the wake-ups so far: the claims below see every job committed before them.
    db_.take_notifications();
    maintain(force_reclaim);
    for (const auto& queue : queues)
      if (auto job = claim(queue)) return job;

    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
    if (left.count() <= 0) return std::nullopt;
    bool timer = false;
    if (auto due = next_due(queues); due && *due < left) {
      // Past due yet not claimed: another worker holds its row right now.
      left = *due > milliseconds(0) ? *due + milliseconds(2) : locked_retry;
      timer = true;
    }
    switch (db_.wait(left, interrupt_fd(), wanted)) {
      case Connection::Wake::interrupted: return std::nullopt;
      case Connection::Wake::notified: force_reclaim = false; break;
      case Connection::Wake::timeout: force_reclaim = timer; break;
    }
  }
}

void PostgresSource::complete(const Job& job) {
  db_.run("complete", sql_.complete, {number(job.id), worker_id_}, "mark job " + job.id + " done");
}

void PostgresSource::fail(const Job& job, std::string_view reason, RetryDecision retry) {
  std::string error = reason.empty() ? "failed" : std::string(reason);
  if (retry.retry)
    db_.run("retry_later", sql_.retry_later,
            {number(job.id), worker_id_, error, std::to_string(retry.delay.count()), channel_},
            "schedule job " + job.id + " for a retry");
  else
    db_.run("bury", sql_.bury, {number(job.id), worker_id_, error}, "mark job " + job.id + " dead");
}

void PostgresSource::release(const Job& job) {
  db_.run("release", sql_.release, {number(job.id), worker_id_, channel_},
          "give job " + job.id + " back");
}

void PostgresSource::extend_lease(const Job& job) {
  db_.run("extend_lease", sql_.extend_lease, {number(job.id), worker_id_, std::to_string(lease_.count())},
          "extend the lease of job " + job.id);
}

void PostgresSource::insert_chunk(std::span<const NewJob> jobs, std::vector<EnqueueResult>& results,
                                  std::map<std::string, size_t>& unresolved) {
  std::vector<Param> queue, payload, priority, run_at, max_attempts, unique_key;
  for (const auto& job : jobs) {
    queue.push_back(job.queue);
    payload.push_back(job.payload);
    priority.push_back(std::to_string(job.priority));
    run_at.push_back(job.run_at ? Param(std::to_string(std::chrono::duration_cast<milliseconds>(
                                                           job.run_at->time_since_epoch()).count()))
                                : std::nullopt);
    max_attempts.push_back(std::to_string(job.max_attempts));
    unique_key.push_back(job.unique_key.empty() ? std::nullopt : Param(job.unique_key));
  }
  auto rows = db_.run("insert", sql_.insert,
                      {array_literal(queue), array_literal(payload), array_literal(priority),
                       array_literal(run_at), array_literal(max_attempts), array_literal(unique_key)},
                      "enqueue " + std::to_string(jobs.size()) + " job(s)");
  for (int i = 0; i < rows.rows(); ++i) {
    bool duplicate = rows.text(i, 2) == "t";
    results.push_back({rows.text(i, 0), duplicate});
    if (duplicate) unresolved.emplace(rows.text(i, 1), results.size() - 1);
  }
}

std::vector<EnqueueResult> PostgresSource::enqueue_batch(std::span<const NewJob> jobs) {
  std::vector<EnqueueResult> results;
  results.reserve(jobs.size());
  // unique key -> first result that names it; duplicates in one batch share the key.
  std::map<std::string, size_t> unresolved;
  std::vector<std::string> queues;
  for (const auto& job : jobs)
    if (std::find(queues.begin(), queues.end(), job.queue) == queues.end()) queues.push_back(job.queue);

  Transaction tx(db_);
  for (size_t at = 0; at < jobs.size(); at += batch_rows)
    insert_chunk(jobs.subspan(at, std::min(batch_rows, jobs.size() - at)), results, unresolved);
  if (!unresolved.empty()) {
    // A skipped row's id is the holder's: a job committed earlier, or one of this batch.
    std::vector<std::string> keys;
    for (const auto& [key, index] : unresolved) keys.push_back(key);
    auto rows = db_.run("holders", sql_.holders, {array_literal(keys)}, "look up unique keys");
    std::map<std::string, std::string> holder;
    for (int i = 0; i < rows.rows(); ++i) holder[rows.text(i, 0)] = rows.text(i, 1);
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].duplicate) continue;
      auto it = holder.find(jobs[i].unique_key);
      if (it == holder.end())
        db_.fail("enqueue into queue " + jobs[i].queue,
                 "the job holding unique key '" + jobs[i].unique_key +
                     "' finished while this one was enqueued; nothing was enqueued, try again");
      results[i].id = it->second;
    }
  }
  db_.run("notify", sql_.notify, {channel_, array_literal(queues)}, "notify the workers");
  tx.commit();
  return results;
}

std::vector<QueueStats> PostgresSource::stats() {
  std::vector<QueueStats> out;
  auto rows = db_.run("stats", sql_.stats, {}, "count jobs");
  for (int i = 0; i < rows.rows(); ++i) {
    std::string queue = rows.text(i, 0);
    if (out.empty() || out.back().queue != queue) out.push_back(QueueStats{queue});
    out.back().add(job_state_from_name(rows.text(i, 1)).value_or(JobState::queued),
                   rows.integer(i, 2));
  }
  return out;
}

JobInfo PostgresSource::read_info(const Result& rows, int row) {
  JobInfo info;
  info.id = rows.text(row, 0);
  info.queue = rows.text(row, 1);
  info.payload = rows.text(row, 2);
  info.state = job_state_from_name(rows.text(row, 3)).value_or(JobState::queued);
  info.priority = static_cast<int>(rows.integer(row, 4));
  info.attempts = static_cast<int>(rows.integer(row, 5));
  info.max_attempts = static_cast<int>(rows.integer(row, 6));
  info.unique_key = rows.text(row, 7);
  info.last_error = rows.text(row, 8);
  info.locked_by = rows.text(row, 9);
  info.created_at = from_ms(rows.integer(row, 10));
  info.run_at = from_ms(rows.integer(row, 11));
  if (!rows.is_null(row, 12)) info.started_at = from_ms(rows.integer(row, 12));
  if (!rows.is_null(row, 13)) info.finished_at = from_ms(rows.integer(row, 13));
  if (!rows.is_null(row, 14)) info.lease_until = from_ms(rows.integer(row, 14));
  return info;
}

std::string PostgresSource::number(const std::string& id) const {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
  if (id.empty() || ec != std::errc() || end != id.data() + id.size() || value <= 0)
    throw JobNotFound("no job with id '" + id + "' (PostgreSQL job ids are positive numbers)");
  return id;
}

JobInfo PostgresSource::get(const std::string& id) {
  auto rows = db_.run("get", sql_.get, {number(id)}, "read job " + id);
  if (rows.rows() == 0)
    throw JobNotFound("no job with id " + id + " in " + table_.schema + "." + table_.table + " at " + db_.label());
  return read_info(rows, 0);
}

std::vector<JobInfo> PostgresSource::list(const JobFilter& filter) {
  auto rows = db_.run("list", sql_.list,
                      {filter.queue, filter.state ? job_state_name(*filter.state) : "",
                       std::to_string(filter.limit)},
                      "list jobs");
  std::vector<JobInfo> out;
  for (int i = 0; i < rows.rows(); ++i) out.push_back(read_info(rows, i));
  return out;
}

void PostgresSource::retry_now(const std::string& id) {
  auto rows = db_.run("retry_now", sql_.retry_now, {number(id), channel_}, "requeue job " + id);
  if (rows.rows() > 0) return;
  JobInfo info = get(id);  // throws JobNotFound for an unknown id
  throw JobNotFound("job " + id + " is " + job_state_name(info.state) +
                    ": only dead or retry-waiting jobs can be retried");
}

}  // namespace

std::unique_ptr<JobSource> open_postgres_source(const PostgresSettings& settings,
                                                const std::string& worker_id) {
  return std::make_unique<PostgresSource>(settings, worker_id);
}

}  // namespace preforkd::postgres
