// The PostgreSQL JobSource (see postgres_source.hpp), a worker's side: claim, lease,
// report, each one prepared statement on this worker's own connection (preforkctl's
// side: postgres_queue_admin.cpp).
//
// A busy worker sends one statement per job, not two: complete() only notes the job,
// and the note is written by a CTE of the next claim (or of any other report, or of
// the hand-back on close). With `prefetch: N` one claim leases up to N jobs, and the
// acks of the whole batch ride on the claim after it. A worker killed in between runs
// those jobs again after the lease (at least once, never lost).
#include "sources/postgres/postgres_source.hpp"

#include <tuple>

#include "sources/job_ids.hpp"
#include "sources/job_messages.hpp"
#include "sources/postgres/pg_array.hpp"
#include "sources/unsettled_jobs.hpp"
#include "util/log.hpp"

namespace preforkd::postgres {

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

std::unique_ptr<JobSource> open_postgres_source(const PostgresSettings& settings,
                                                const std::string& worker_id) {
  return std::make_unique<PostgresSource>(settings, worker_id);
}

}  // namespace preforkd::postgres
