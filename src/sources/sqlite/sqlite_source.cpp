// The embedded default source: one SQLite file (WAL) shared by every worker process on
// the host. Claims run in BEGIN IMMEDIATE transactions; leases bring back the jobs of
// dead workers; idle workers sleep on inotify of the -wal file (every commit appends to
// it) until a write or the next due time, so an idle pool costs nothing and a new job
// starts within milliseconds.
//
// A busy worker writes once per job, not twice: complete() only notes the job, and the
// note is committed in the transaction of the next claim (or of any other write, or on
// close). With `prefetch: N` one claim leases up to N jobs, and the acks of the whole
// batch ride on the claim after it. A worker killed in between runs those jobs again
// after the lease (at least once, never lost); the jobs of its batch get their attempt
// back and are claimed one at a time (suspect), so only a job that kills its worker
// alone is charged for it.
#include "sources/sqlite/sqlite_source.hpp"

#include <algorithm>

#include "sources/job_ids.hpp"
#include "sources/job_messages.hpp"
#include "sources/unsettled_jobs.hpp"
#include "util/log.hpp"

namespace preforkd::sqlite {

SqliteSource::~SqliteSource() {
  // A stopping worker: write what it finished, give back what it had not started.
  if (pending_acks_.empty() && claimed_.empty()) return;
  try {
    hand_back_all();
  } catch (const std::exception& e) {
    spdlog::warn("sqlite {}: could not hand back on close ({}); the jobs run again when "
                 "their lease expires", path_, e.what());
  }
}

void SqliteSource::write_acks() {
  // `locked_by = ?2`: a worker whose lease ran out and was given to another must not
  // mark the other's run done.
  for (auto [id, finished_at] : pending_acks_) {
    db_->prepare(
           "UPDATE preforkd_jobs SET state = 'done', locked_by = NULL, lease_until = NULL, "
           "finished_at = ?3, last_error = NULL WHERE id = ?1 AND locked_by = ?2 AND state = 'running'")
        .bind(1, id)
        .bind(2, worker_id_)
        .bind(3, finished_at)
        .run();
  }
}

void SqliteSource::write_releases() {
  int64_t now = now_ms();
  for (const auto& job : claimed_) {
    db_->prepare(
           "UPDATE preforkd_jobs SET state = 'queued', locked_by = NULL, lease_until = NULL, "
           "attempts = max(attempts - 1, 0), started_at = NULL, finished_at = ?3 "
           "WHERE id = ?1 AND locked_by = ?2 AND state = 'running'")
        .bind(1, job_id(job))
        .bind(2, worker_id_)
        .bind(3, now)
        .run();
  }
}

void SqliteSource::hand_back_all() {
  WriteTransaction tx(*db_);
  write_acks();
  write_releases();
  tx.commit();
  pending_acks_.clear();
  claimed_.clear();
}

std::pair<int64_t, bool> SqliteSource::claim_cut(const std::string& queue, int64_t now, int64_t wanted,
                                                  bool first) {
  // Same order as the claim, inside its transaction: the rows the claim then takes are
  // exactly the first `take` of these.
  auto due = db_->prepare(
      "SELECT suspect FROM preforkd_jobs WHERE queue = ?1 AND state IN ('queued', 'retry') "
      "AND run_at <= ?2 ORDER BY priority DESC, run_at, id LIMIT ?3");
  due.bind(1, queue).bind(2, now).bind(3, wanted);
  int64_t take = 0;
  while (due.step()) {
    if (due.int_column(0) != 0) return {take == 0 && first ? 1 : take, true};
    ++take;
  }
  return {take, false};
}

bool SqliteSource::try_claim(std::span<const std::string> queues) {
  int64_t now = now_ms();
  auto steady_now = std::chrono::steady_clock::now();
  WriteTransaction tx(*db_);
  write_acks();
  // Leases that ran out: their worker died or hung. Back to the queue, marked suspect:
  // from then on each is claimed alone (see claim_cut), so a death is charged to the one
  // job that caused it. The attempt was counted at the claim, so a job that keeps
  // killing its worker ends dead; but of a batch (prefetch) nobody can tell which job
  // was running, so the jobs of a worker that held several get their attempt back.
  std::vector<TakenBackJob> taken_back;  // logged once committed
  {
    auto expired = db_->prepare(
        "UPDATE preforkd_jobs AS j SET state = 'queued', locked_by = NULL, lease_until = NULL, "
        "suspect = 1, attempts = iif(held.n > 1, max(attempts - 1, 0), attempts), "
        "last_error = 'lease expired (held by ' || coalesce(j.locked_by, '?') || iif(held.n > 1, "
        "' with ' || (held.n - 1) || ' other job(s); attempt not counted, it runs alone next', '') || ')' "
        "FROM (SELECT locked_by, count(*) AS n FROM preforkd_jobs "
        "      WHERE state = 'running' AND lease_until < ?1 GROUP BY locked_by) AS held "
        "WHERE j.state = 'running' AND j.lease_until < ?1 AND j.locked_by IS held.locked_by "
        "RETURNING id, last_error");
    expired.bind(1, now);
    while (expired.step())
      taken_back.push_back({std::to_string(expired.int_column(0)), expired.text_column(1)});
  }
  if (now >= next_prune_ms_) {
    db_->prepare("DELETE FROM preforkd_jobs WHERE state = 'done' AND finished_at < ?1")
        .bind(1, now - keep_done_.count())
        .run();
    next_prune_ms_ = now + 60'000;
  }
  // Queues in strict order: the batch takes what queues[0] has before looking further.
  // It joins claimed_ only after the commit: a claim that was rolled back leases nothing.
  std::vector<Job> claimed;
  for (const auto& queue : queues) {
    int64_t wanted = prefetch_ - static_cast<int64_t>(claimed_.size() + claimed.size());
    if (wanted <= 0) break;
    bool cut = false;
    if (prefetch_ > 1) {  // also when one place is left: a suspect job must not fill it
      auto [take, stop] = claim_cut(queue, now, wanted, claimed_.empty() && claimed.empty());
      wanted = take;
      cut = stop;
    }
    if (wanted > 0) {
      auto claim = db_->prepare(
          "UPDATE preforkd_jobs SET state = 'running', attempts = attempts + 1, locked_by = ?3, "
          "lease_until = ?4, started_at = ?2, suspect = 0 WHERE id IN (SELECT id FROM preforkd_jobs "
          "WHERE queue = ?1 AND state IN ('queued', 'retry') AND run_at <= ?2 "
          "ORDER BY priority DESC, run_at, id LIMIT ?5) "
          "RETURNING id, payload, attempts, max_attempts, priority, run_at");
      claim.bind(1, queue).bind(2, now).bind(3, worker_id_).bind(4, now + lease_.count()).bind(5, wanted);
      // RETURNING comes in no promised order: put the batch back in queue order.
      std::vector<std::pair<std::tuple<int64_t, int64_t, int64_t>, Job>> batch;
      while (claim.step()) {
        Job job{std::to_string(claim.int_column(0)), queue, claim.text_column(1),
                static_cast<int>(claim.int_column(2)), static_cast<int>(claim.int_column(3)),
                static_cast<int>(claim.int_column(4)), worker_id_};
        batch.emplace_back(std::tuple(-claim.int_column(4), claim.int_column(5), claim.int_column(0)),
                           std::move(job));
      }
      std::sort(batch.begin(), batch.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (auto& entry : batch) claimed.push_back(std::move(entry.second));
    }
    if (cut) break;
  }
  tx.commit();
  if (!taken_back.empty()) log_leases_taken_back("sqlite " + path_, taken_back);
  pending_acks_.clear();
  for (auto& job : claimed) claimed_.push_back(std::move(job));
  // The lease counts from `now`; keep a margin for the clock and the handing out.
  claimed_lease_until_ = steady_now + lease_ - std::min(lease_ / 10, milliseconds(1000));
  return !claimed_.empty();
}

int64_t SqliteSource::next_wake_ms(std::span<const std::string> queues) {
  int64_t next = INT64_MAX;
  for (const auto& queue : queues) {
    auto due = db_->prepare(
        "SELECT min(run_at) FROM preforkd_jobs WHERE queue = ?1 AND state IN ('queued', 'retry')");
    due.bind(1, queue);
    if (due.step() && !due.is_null(0)) next = std::min(next, due.int_column(0));
  }
  auto lease = db_->prepare("SELECT min(lease_until) FROM preforkd_jobs WHERE state = 'running'");
  if (lease.step() && !lease.is_null(0)) next = std::min(next, lease.int_column(0) + 1);
  return next;
}

std::optional<Job> SqliteSource::fetch(std::span<const std::string> queues, milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  if (!claimed_.empty() && std::chrono::steady_clock::now() >= claimed_lease_until_) {
    // The batch outlived its lease (a long job, a failed heartbeat): another worker may
    // have it by now. Give back what is still ours and claim afresh.
    hand_back_all();
  }
  for (;;) {
    if (!claimed_.empty()) {
      Job job = std::move(claimed_.front());
      claimed_.pop_front();
      return job;
    }
    // Forget earlier writes first: one that lands after the claim attempt still wakes us.
    watch().drain();
    if (try_claim(queues)) continue;
    // Only when its file has nothing for it (not once per claim of a busy worker): jobs
    // it finds there are still run first.
    check_still_the_file();
    auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    int64_t next = next_wake_ms(queues);
    if (next != INT64_MAX) left = std::min(left, milliseconds(std::max<int64_t>(0, next - now_ms())));
    if (left.count() <= 0 && std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    if (watch().wait(left, interrupt_fd())) return std::nullopt;
  }
}

void SqliteSource::finish(const Job& job, const char* sql, std::string_view error, int64_t run_at) {
  WriteTransaction tx(*db_);
  write_acks();
  auto stmt = db_->prepare(sql);
  stmt.bind(1, job_id(job)).bind(2, worker_id_).bind(3, now_ms());
  if (!error.empty()) stmt.bind(4, error);
  if (run_at) stmt.bind(5, run_at);
  stmt.run();
  tx.commit();
  pending_acks_.clear();
}

void SqliteSource::complete(const Job& job) {
  if (job.lease_holder == worker_id_) {
    pending_acks_.emplace_back(job_id(job), now_ms());  // written with the next transaction
    return;
  }
  finish(job,
         "UPDATE preforkd_jobs SET state = 'done', locked_by = NULL, lease_until = NULL, "
         "finished_at = ?3, last_error = NULL WHERE id = ?1 AND locked_by = ?2 AND state = 'running'",
         {}, 0);
}

void SqliteSource::fail(const Job& job, std::string_view reason, RetryDecision retry) {
  std::string error = reason.empty() ? "failed" : std::string(reason);
  if (retry.retry) {
    finish(job,
           "UPDATE preforkd_jobs SET state = 'retry', locked_by = NULL, lease_until = NULL, "
           "finished_at = ?3, last_error = ?4, run_at = ?5 "
           "WHERE id = ?1 AND locked_by = ?2 AND state = 'running'",
           error, now_ms() + retry.delay.count());
  } else if (retry.attempt_ran) {
    finish(job,
           "UPDATE preforkd_jobs SET state = 'dead', locked_by = NULL, lease_until = NULL, "
           "finished_at = ?3, last_error = ?4 WHERE id = ?1 AND locked_by = ?2 AND state = 'running'",
           error, 0);
  } else {
    finish(job,
           "UPDATE preforkd_jobs SET state = 'dead', locked_by = NULL, lease_until = NULL, "
           "finished_at = ?3, last_error = ?4, attempts = max(attempts - 1, 0) "
           "WHERE id = ?1 AND locked_by = ?2 AND state = 'running'",
           error, 0);
  }
}

void SqliteSource::release(const Job& job) {
  finish(job,
         "UPDATE preforkd_jobs SET state = 'queued', locked_by = NULL, lease_until = NULL, "
         "attempts = max(attempts - 1, 0), started_at = NULL, finished_at = ?3 "
         "WHERE id = ?1 AND locked_by = ?2 AND state = 'running'",
         {}, 0);
}

JobSource::Unsettled SqliteSource::take_unsettled() {
  // A write that failed (busy_timeout passed, disk full, the file gone): the next
  // connection has this worker's name too and writes them as its own. A job whose lease
  // ran out meanwhile is no longer ours: those statements then change nothing.
  std::vector<std::string> done;
  for (auto [id, finished_at] : pending_acks_) done.push_back(std::to_string(id));
  pending_acks_.clear();
  return unsettled_jobs(std::move(done), claimed_, worker_id_);
}

void SqliteSource::extend_lease(const Job& job) {
  // Every job this worker holds: the running one, the prefetched batch behind it and
  // the completions not yet written. They keep their leases together.
  auto steady_now = std::chrono::steady_clock::now();
  WriteTransaction tx(*db_);
  write_acks();
  db_->prepare("UPDATE preforkd_jobs SET lease_until = ?3 + ?4 "
               "WHERE state = 'running' AND (locked_by = ?2 OR (id = ?1 AND locked_by = ?5))")
      .bind(1, job_id(job))
      .bind(2, worker_id_)
      .bind(3, now_ms())
      .bind(4, lease_.count())
      .bind(5, job.lease_holder.empty() ? worker_id_ : job.lease_holder)
      .run();
  tx.commit();
  pending_acks_.clear();
  claimed_lease_until_ = steady_now + lease_ - std::min(lease_ / 10, milliseconds(1000));
}

namespace {

JobSourceType sqlite_source_type() {
  JobSourceType type;
  type.keys = {"path", "lease", "busy_timeout", "keep_done", "prefetch"};
  type.check = [](const std::string& key, const std::string& value) -> std::string {
    if (key == "path") return value.empty() ? "must not be empty" : "";
    if (key == "prefetch") return check_prefetch(value);
    try {
      auto d = parse_duration(value);
      if (key == "lease" && d < std::chrono::seconds(1)) return "must be at least 1s (got " + value + ")";
      return "";
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
  };
  type.open = [](const SourceConfig& config, const std::string& worker_id) {
    return std::unique_ptr<JobSource>(new SqliteSource(config, worker_id));
  };
  type.files = [](const SourceConfig& config) {
    std::string db = SqliteSource::database_path(config);
    return std::vector<std::string>{db, db + "-wal", db + "-shm", db + "-journal"};
  };
  return type;
}

PREFORKD_REGISTER_JOB_SOURCE("sqlite", sqlite_source_type)

}  // namespace
}  // namespace preforkd::sqlite
