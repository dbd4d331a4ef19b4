// fetch -> handle -> complete | fail | release (see job_worker.hpp).
#include "worker/job_worker.hpp"

#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <random>
#include <utility>

#include "handlers/handler.hpp"
#include "util/log.hpp"
#include "worker/retry_policy.hpp"
#include "worker/source_connection.hpp"

namespace preforkd {
namespace {

// How long one fetch waits before the loop looks at its stop flags again (a stop
// signal interrupts the wait at once anyway).
constexpr std::chrono::seconds fetch_wait{30};

int request_limit(const JobsConfig& jobs) {
  if (jobs.max_requests_per_child <= 0) return 0;
  int jitter = 0;
  if (jobs.max_requests_jitter > 0) {
    // Spread recycling so children started together do not all restart together.
    std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(::time(nullptr)));
    jitter = std::uniform_int_distribution<int>(0, jobs.max_requests_jitter)(rng);
  }
  return jobs.max_requests_per_child + jitter;
}

void record_outcome(JobSource& source, const PoolConfig& pool, const Job& job,
                    const HandlerOutcome& outcome) {
  using Kind = HandlerOutcome::Kind;
  if (outcome.kind == Kind::done) {  // the hot path: no formatting
    source.complete(job);
    return;
  }
  // A job that is dead without a run was claimed for an attempt it never had: naming
  // that attempt (3 of a job with 2 allowed) read as a count gone wrong.
  const std::string prefix =
      outcome.kind == Kind::exhausted
          ? fmt::format("pool={} pid={} job={} queue={}", pool.name, ::getpid(), job.id, job.queue)
          : fmt::format("pool={} pid={} job={} queue={} attempt={}", pool.name, ::getpid(), job.id, job.queue,
                        job.attempt);
  switch (outcome.kind) {
    case Kind::done: return;
    case Kind::given_back:
      source.release(job);
      spdlog::info("{}: given back to the queue ({})", prefix, outcome.error);
      return;
    case Kind::permanent:
      source.fail(job, outcome.error, {false, Duration{0}});
      spdlog::warn("{}: dead: {} (the handler asked not to retry)", prefix, outcome.error);
      return;
    case Kind::exhausted:
      source.fail(job, outcome.error, {false, Duration{0}, false});
      spdlog::warn("{}: dead without a run: {}", prefix, outcome.error);
      return;
    case Kind::retry:
    case Kind::failed:
    case Kind::timeout: {
      RetryDecision decision = decide_retry(pool.jobs.retry, job.attempt, job.max_attempts);
      source.fail(job, outcome.error, decision);
      if (decision.retry)
        spdlog::warn("{}: failed: {}; retry in {}ms", prefix, outcome.error, decision.delay.count());
      else
        spdlog::warn("{}: dead after {} attempt(s): {}", prefix, job.attempt, outcome.error);
      return;
    }
  }
}

// The job ran: its result is worth a few reconnects. If the source stays away, the
// lease expires and the job runs again (at least once), so giving up loses nothing.
void record_until_done(SourceConnection& connection, ForkedChildContext& context,
                       const PoolConfig& pool, const Job& job, const HandlerOutcome& outcome) {
  constexpr int tries_while_stopping = 10;
  for (int tries = 0;; ++tries) {
    if (JobSource* source = connection.get()) {
      try {
        record_outcome(*source, pool, job, outcome);
        return;
      } catch (const SourceError& e) {
        connection.broken(e);
      }
    }
    if (context.fast_stop_requested() || (context.stop_requested() && tries >= tries_while_stopping)) {
      spdlog::warn("pool={} job={}: result not recorded; the job runs again when its lease expires",
                   pool.name, job.id);
      return;
    }
  }
}

}  // namespace

int run_job_worker(ForkedChildContext& context, const PoolConfig& pool,
                   const SourceConfig& source_config) {
  // A handler that closed its stdin must not kill the worker with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  // Each job's transaction refills SQLite's page cache (~100-130 KB, just under glibc's
  // 128 KiB trim threshold): without this the heap top went back to the kernel and was
  // taken again on every job (brk + munmap + TLB shootdown, a third of the worker's CPU).
  ::mallopt(M_TRIM_THRESHOLD, 8 << 20);
  ::mallopt(M_TOP_PAD, 1 << 20);
  SourceConnection connection(pool, source_config, context);
  std::unique_ptr<Handler> handler = make_handler(pool, source_config);

  RunControl control;
  control.timeout = pool.jobs.timeout;
  control.grace = pool.jobs.timeout_grace;
  control.stop_fd = ForkedChildContext::stop_fd();
  control.fast_stop = [&context] { return context.fast_stop_requested(); };

  const int limit = request_limit(pool.jobs);
  int served = 0;
  // Jobs since the last idle report: back-to-back jobs share one busy and one idle
  // report, so a busy worker does not wake the supervisor twice per job.
  unsigned streak = 0;
  context.ready();
  while (!context.stop_requested() && (limit == 0 || served < limit)) {
    // After a USR1, an idle worker too lets go of the old log file (within a fetch wait).
    follow_log_reopen_between_jobs();
    JobSource* source = connection.get();
    if (!source) continue;
    std::optional<Job> job;
    try {
      // In a streak, look without waiting first: an empty queue ends the streak.
      job = source->fetch(pool.jobs.queues, streak ? std::chrono::milliseconds(0) : fetch_wait);
    } catch (const SourceError& e) {
      connection.broken(e);
      continue;
    }
    if (!job) {
      if (streak) context.idle_after(std::exchange(streak, 0));
      continue;
    }
    if (context.stop_requested()) {
      // QUIT (or a reload) came while the claim waited, on a database lock say: the job
      // is not started, and a stop leaves jobs not started queued.
      record_until_done(connection, context, pool, *job,
                        {HandlerOutcome::Kind::given_back, "the worker was told to stop as it claimed the job"});
      break;
    }
    if (streak++ == 0) context.busy("job " + job->id);
    control.heartbeat_every = std::max(Duration(100), source->lease_time() / 3);
    control.heartbeat = [&connection, &pool, current = *job] {
      try {
        if (JobSource* s = connection.get()) s->extend_lease(current);
      } catch (const SourceError& e) {
        spdlog::warn("pool={} job={}: lease heartbeat failed: {}", pool.name, current.id, e.what());
        connection.broken(e);
      }
    };
    HandlerOutcome outcome;
    int allowed = allowed_attempts(pool.jobs.retry, job->max_attempts);
    if (job->attempt > allowed) {
      // An earlier run never reported back (its worker died, or its lease ran out).
      outcome = {HandlerOutcome::Kind::exhausted,
                 fmt::format("attempts exhausted ({} of {}): an earlier run did not finish "
                             "(worker died or lease expired)",
                             job->attempt - 1, allowed)};
    } else {
      try {
        outcome = handler->run(*job, control);
      } catch (const std::exception& e) {
        // The handler could not be run at all (no process or descriptor left: EAGAIN
        // under TasksMax, EMFILE). The job goes back uncounted, and this worker exits
        // non-zero so the supervisor respawns it with backoff instead of spinning.
        spdlog::error("pool={} pid={} job={}: cannot run the handler: {}; the job goes back "
                      "to the queue and this worker exits",
                      pool.name, ::getpid(), job->id, e.what());
        record_until_done(connection, context, pool, *job, {HandlerOutcome::Kind::given_back, e.what()});
        return 1;
      }
    }
    record_until_done(connection, context, pool, *job, outcome);
    ++served;
  }
  if (streak) context.idle_after(streak);
  if (limit && served >= limit)
    spdlog::info("pool={} pid={}: served {} job(s), max_requests_per_child reached: exiting",
                 pool.name, ::getpid(), served);
  return 0;
}

}  // namespace preforkd
