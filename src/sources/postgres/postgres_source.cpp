// The PostgreSQL JobSource (see postgres_source.hpp): claim, lease, report, enqueue and
// the operator views, each one prepared statement on this worker's own connection.
//
// A busy worker sends one statement per job, not two: complete() only notes the job,
// and the note is written by a CTE of the next claim (or of any other report, or of
// the hand-back on close). With `prefetch: N` one claim leases up to N jobs, and the
// acks of the whole batch ride on the claim after it. A worker killed in between runs
// those jobs again after the lease (at least once, never lost).
#include "sources/postgres/postgres_source.hpp"
#include "sources/unsettled_jobs.hpp"

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <tuple>

#include "sources/job_ids.hpp"
#include "sources/job_messages.hpp"
#include "sources/postgres/pg_array.hpp"
#include "sources/postgres/pg_connection.hpp"
#include "sources/postgres/pg_queries.hpp"
#include "sources/postgres/pg_schema.hpp"
#include "util/log.hpp"

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

PostgresSource::~PostgresSource() {
  // A stopping worker: write what it finished, give back what it had not started.
  if (pending_acks_.empty() && claimed_.empty()) return;
  if (!db_.ok()) {
    // A lost connection would only make us wait for libpq's timeouts.
    spdlog::warn("postgres {}: connection lost with {} finished and {} unstarted job(s) held; "
                 "they run again when their lease expires", db_.label(), pending_acks_.size(),
                 claimed_.size());
    return;
  }
  try {
    hand_back();
  } catch (const std::exception& e) {
    spdlog::warn("postgres {}: could not hand back on close ({}); the jobs run again when "
                 "their lease expires", db_.label(), e.what());
  }
}

std::vector<Param> PostgresSource::ack_params() const {
  std::vector<std::string> ids, ages;
  auto now = steady::now();
  for (const auto& [id, finished] : pending_acks_) {
    ids.push_back(id);
    ages.push_back(std::to_string(std::chrono::duration_cast<milliseconds>(now - finished).count()));
  }
  return {array_literal(ids), array_literal(ages)};
}

void PostgresSource::hand_back() {
  std::vector<std::string> ids;
  for (const auto& job : claimed_) ids.push_back(job.id);
  auto acks = ack_params();
  db_.run("hand_back", sql_.hand_back, {array_literal(ids), worker_id_, acks[0], acks[1], channel_},
          "write finished jobs and give back " + std::to_string(ids.size()) + " unstarted job(s)");
  pending_acks_.clear();
  claimed_.clear();
}

bool PostgresSource::try_claim(std::span<const std::string> queues) {
  auto sent = steady::now();
  auto acks = ack_params();
  bool one = queues.size() == 1;
  auto rows = db_.run(one ? "claim_batch_one" : "claim_batch", one ? sql_.claim_batch_one : sql_.claim_batch,
                      {array_literal(std::vector<std::string>(queues.begin(), queues.end())),
                       worker_id_, acks[0], acks[1],
                       std::to_string(lease_.count())},
                      "claim jobs");
  pending_acks_.clear();
  // RETURNING comes in no promised order: put the batch back in queue order.
  auto queue_rank = [&](const std::string& queue) {
    return std::find(queues.begin(), queues.end(), queue) - queues.begin();
  };
  std::vector<std::pair<std::tuple<int64_t, int64_t, int64_t, int64_t>, Job>> batch;
  for (int i = 0; i < rows.rows(); ++i) {
    Job job{rows.text(i, 0), rows.text(i, 1), rows.text(i, 2), static_cast<int>(rows.integer(i, 3)),
            static_cast<int>(rows.integer(i, 4)), static_cast<int>(rows.integer(i, 5)), worker_id_};
    batch.emplace_back(std::tuple(static_cast<int64_t>(queue_rank(job.queue)), -rows.integer(i, 5),
                                  rows.integer(i, 6), rows.integer(i, 0)),
                       std::move(job));
  }
  std::sort(batch.begin(), batch.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& entry : batch) claimed_.push_back(std::move(entry.second));
  claimed_lease_until_ = lease_known_until(sent);
  return !claimed_.empty();
}

void PostgresSource::maintain(bool force_reclaim) {
  auto now = steady::now();
  if (force_reclaim || now >= next_reclaim_) {
    Result rows = db_.run("reclaim", sql_.reclaim, {channel_}, "take back expired leases");
    std::vector<TakenBackJob> taken_back;
    for (int row = 0; row < rows.rows(); ++row) taken_back.push_back({rows.text(row, 0), rows.text(row, 1)});
    if (!taken_back.empty()) log_leases_taken_back("postgres " + db_.label(), taken_back);
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
  if (!claimed_.empty() && steady::now() >= claimed_lease_until_) {
    // The batch outlived its lease (a long job, a failed heartbeat): another worker may
    // have it by now. Give back what is still ours and claim afresh.
    hand_back();
  }
  if (!claimed_.empty()) {
    Job job = std::move(claimed_.front());
    claimed_.pop_front();
    return job;
  }
  if (!listening_) {
    db_.exec("LISTEN " + TableName::quote(channel_), "listen for new jobs");
    listening_ = true;
  }
  auto wanted = [&](const std::string& queue) {
    return queue.empty() || std::find(queues.begin(), queues.end(), queue) != queues.end();
  };
  bool force_reclaim = false;
  for (;;) {
    // Forget the wake-ups so far: the claim below sees every job committed before them.
    // Only those libpq has already parsed (the replies of our earlier statements carry
    // them), without reading the socket: that read found nothing (EAGAIN) on nearly
    // every call of a busy worker. Safe: a NOTIFY is sent after its transaction
    // commits, so one parsed by now is for a job the claim's snapshot sees; one still
    // unread in the socket stays there and makes wait() return at once, a spare claim
    // at worst, never a missed wake-up.
    db_.drop_parsed_notifications();
    maintain(force_reclaim);
    if (try_claim(queues)) {
      Job job = std::move(claimed_.front());
      claimed_.pop_front();
      return job;
    }

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
  if (job.lease_holder == worker_id_) {
    pending_acks_.emplace_back(number(job.id), steady::now());  // written with the next statement
    return;
  }
  // Leased under another name: written now (the noted acks wait for the next statement).
  db_.run("complete", sql_.complete, {number(job.id), worker_id_}, "mark job " + job.id + " done");
}

void PostgresSource::fail(const Job& job, std::string_view reason, RetryDecision retry) {
  std::string error = reason.empty() ? "failed" : std::string(reason);
  auto acks = ack_params();
  if (retry.retry)
    db_.run("retry_later", sql_.retry_later,
            {number(job.id), worker_id_, error, std::to_string(retry.delay.count()), channel_,
             acks[0], acks[1]},
            "schedule job " + job.id + " for a retry");
  else
    db_.run("bury", sql_.bury,
            {number(job.id), worker_id_, error, acks[0], acks[1], retry.attempt_ran ? "0" : "1"},
            "mark job " + job.id + " dead");
  pending_acks_.clear();
}

void PostgresSource::release(const Job& job) {
  auto acks = ack_params();
  db_.run("release", sql_.release, {number(job.id), worker_id_, channel_, acks[0], acks[1]},
          "give job " + job.id + " back");
  pending_acks_.clear();
}

JobSource::Unsettled PostgresSource::take_unsettled() {
  // Leased to this worker's name, which its next connection has too: that connection
  // writes them as its own (and a job whose lease ran out meanwhile is no longer ours:
  // the statements change nothing then).
  std::vector<std::string> done;
  for (auto& [id, finished] : pending_acks_) done.push_back(std::move(id));
  pending_acks_.clear();
  return unsettled_jobs(std::move(done), claimed_, worker_id_);
}

void PostgresSource::extend_lease(const Job& job) {
  // Every job this worker holds: the running one, the prefetched batch behind it and
  // the completions not yet written (those are written now). They keep their leases
  // together.
  auto sent = steady::now();
  auto acks = ack_params();
  // Bounded: the heartbeat runs in a job's wait loop, which also enforces the job's
  // timeout and hears TERM. A heartbeat later than a third of the lease is no use anyway.
  db_.run_within("extend_lease", sql_.extend_lease,
                 {number(job.id), worker_id_, std::to_string(lease_.count()), acks[0], acks[1],
                  job.lease_holder.empty() ? worker_id_ : job.lease_holder},
                 "extend the lease of job " + job.id, std::max(lease_ / 3, milliseconds(1000)));
  pending_acks_.clear();
  claimed_lease_until_ = lease_known_until(sent);
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
  if (!parse_job_id(id)) throw JobNotFound("no job with id '" + id + "' (PostgreSQL job ids are positive numbers)");
  return id;  // the server reads "003" as 3: no text made per job on the workers' path
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

void PostgresSource::remove(const std::string& id) {
  for (int tries = 1;; ++tries) {
    auto rows = db_.run("remove", sql_.remove, {number(id)}, "delete job " + id);
    if (rows.rows() > 0) return;
    JobInfo info = get(id);  // throws JobNotFound for an unknown id
    if (info.state == JobState::running) throw JobNotFound(running_job_not_deleted_message(id, info.locked_by));
    // It ended between the two statements (it was running when the DELETE ran).
    if (tries == 3)
      throw JobNotFound("job " + id + " changed state while being deleted (now " +
                        job_state_name(info.state) + "): try again");
  }
}

int64_t PostgresSource::remove_queue(const std::string& queue, std::span<const JobState> states) {
  // In slices, each its own short transaction: rows locked for that long only.
  constexpr int64_t slice = 10000;
  const std::string wanted = deletable_states_text(states);
  int64_t deleted = 0;
  for (;;) {
    auto rows = db_.run("remove_queue", sql_.remove_queue, {queue, wanted, std::to_string(slice)},
                        "delete jobs of queue " + queue);
    int64_t count = std::stoll(rows.text(0, 0));
    deleted += count;
    if (count < slice) return deleted;
  }
}

void PostgresSource::retry_now(const std::string& id) {
  JobInfo info = get(id);  // throws JobNotFound for an unknown id
  if (!info.unique_key.empty() && (info.state == JobState::dead || info.state == JobState::retry)) {
    // A dead job's key is free: another job may hold it now. Said plainly, not as the
    // unique index's "duplicate key value" (which still ends a retry racing an enqueue).
    auto holders = db_.run("holders", sql_.holders, {array_literal(std::vector<std::string>{info.unique_key})},
                           "look up the holder of unique key '" + info.unique_key + "'");
    for (int i = 0; i < holders.rows(); ++i) {
      std::string holder = holders.text(i, 1);
      if (holder != id)
        throw JobNotFound(unique_key_held_message(id, info.unique_key, holder,
                                                  job_state_name(get(holder).state)));
    }
  }
  auto rows = db_.run("retry_now", sql_.retry_now, {number(id), channel_}, "requeue job " + id);
  if (rows.rows() > 0) return;
  info = get(id);
  throw JobNotFound("job " + id + " is " + job_state_name(info.state) +
                    ": only dead or retry-waiting jobs can be retried");
}

}  // namespace

std::unique_ptr<JobSource> open_postgres_source(const PostgresSettings& settings,
                                                const std::string& worker_id) {
  return std::make_unique<PostgresSource>(settings, worker_id);
}

}  // namespace preforkd::postgres
