// fetch -> handle -> complete | fail | release (see job_worker.hpp).
#include "worker/job_worker.hpp"

#include <signal.h>
#include <unistd.h>

#include <random>

#include "handlers/handler.hpp"
#include "util/log.hpp"
#include "worker/retry_policy.hpp"

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
  const std::string prefix = fmt::format("pool={} pid={} job={} queue={} attempt={}", pool.name,
                                         ::getpid(), job.id, job.queue, job.attempt);
  switch (outcome.kind) {
    case Kind::done:
      source.complete(job);
      spdlog::debug("{}: done", prefix);
      return;
    case Kind::given_back:
      source.release(job);
      spdlog::info("{}: given back to the queue ({})", prefix, outcome.error);
      return;
    case Kind::permanent:
      source.fail(job, outcome.error, {false, Duration{0}});
      spdlog::warn("{}: dead: {} (the handler asked not to retry)", prefix, outcome.error);
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

}  // namespace

int run_job_worker(ForkedChildContext& context, const PoolConfig& pool,
                   const SourceConfig& source_config) {
  // A handler that closed its stdin must not kill the worker with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<JobSource> source;
  try {
    source = open_job_source(source_config);
  } catch (const std::exception& e) {
    spdlog::error("pool={} pid={}: cannot open source '{}': {}", pool.name, ::getpid(),
                  source_config.name, e.what());
    return 1;
  }
  source->set_interrupt_fd(ForkedChildContext::stop_fd());
  std::unique_ptr<Handler> handler = make_handler(pool, source_config);

  RunControl control;
  control.timeout = pool.jobs.timeout;
  control.grace = pool.jobs.timeout_grace;
  control.stop_fd = ForkedChildContext::stop_fd();
  control.fast_stop = [&context] { return context.fast_stop_requested(); };
  control.heartbeat_every = std::max(Duration(100), source->lease_time() / 3);

  const int limit = request_limit(pool.jobs);
  int served = 0;
  context.ready();
  try {
    while (!context.stop_requested() && (limit == 0 || served < limit)) {
      std::optional<Job> job = source->fetch(pool.jobs.queues, fetch_wait);
      if (!job) continue;
      context.busy("job " + job->id);
      Job current = *job;
      control.heartbeat = [&source, current] { source->extend_lease(current); };
      int allowed = allowed_attempts(pool.jobs.retry, job->max_attempts);
      if (job->attempt > allowed) {
        // An earlier run never reported back (its worker died, or its lease ran out).
        source->fail(*job, fmt::format("attempts exhausted ({} of {}): an earlier run did not "
                                       "finish (worker died or lease expired)",
                                       job->attempt - 1, allowed),
                     {false, Duration{0}});
        spdlog::warn("pool={} job={}: dead: attempts exhausted", pool.name, job->id);
      } else {
        record_outcome(*source, pool, *job, handler->run(*job, control));
      }
      context.idle();
      ++served;
    }
  } catch (const SourceError& e) {
    // The lease of a job in hand expires and the job runs again elsewhere: nothing lost.
    spdlog::error("pool={} pid={}: source '{}' failed: {}", pool.name, ::getpid(),
                  source_config.name, e.what());
    return 1;
  }
  if (limit && served >= limit)
    spdlog::info("pool={} pid={}: served {} job(s), max_requests_per_child reached: exiting",
                 pool.name, ::getpid(), served);
  return 0;
}

}  // namespace preforkd
