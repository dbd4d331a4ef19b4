// In-process jobs and their watchdog (see in_process_handler.hpp).
#include "handlers/in_process_handler.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <optional>

#include "util/log.hpp"
#include "worker/retry_policy.hpp"

namespace preforkd {
namespace {

class InProcessContext final : public JobContext {
 public:
  InProcessContext(const std::string& pool, const RunControl& control, const bool& timed_out,
                   std::mutex& mutex)
      : pool_(pool), control_(control), timed_out_(timed_out), mutex_(mutex) {}
  bool stop_requested() const override {
    return timed_out() || (control_.fast_stop && control_.fast_stop());
  }
  bool timed_out() const override {
    std::lock_guard lock(mutex_);
    return timed_out_;
  }
  const std::string& pool() const override { return pool_; }

 private:
  const std::string& pool_;
  const RunControl& control_;
  const bool& timed_out_;
  std::mutex& mutex_;
};

// The worker's handler, for the atexit hook (one per worker process).
InProcessHandler* handler_of_this_worker = nullptr;

}  // namespace

InProcessHandler::InProcessHandler(const PoolConfig& pool, const SourceConfig& source)
    : pool_(pool), source_(source) {}

InProcessHandler::~InProcessHandler() {
  if (handler_of_this_worker == this) handler_of_this_worker = nullptr;
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    quitting_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

HandlerOutcome InProcessHandler::run(const Job& job, const RunControl& control) {
  const JobFunction* fn = find_job_handler(job.queue);
  if (!fn) return {HandlerOutcome::Kind::failed, "no in-process handler registered for queue " + job.queue};
  // Started on first use, in the worker child (threads do not survive fork).
  if (!thread_.joinable()) {
    thread_ = std::thread([this] { watchdog(); });
    worker_pid_ = ::getpid();
    handler_of_this_worker = this;
    static bool hooked = false;
    if (!hooked) hooked = std::atexit(exit_during_job) == 0;
  }
  bool wake_watchdog;
  {
    std::lock_guard lock(mutex_);
    current_ = &job;
    control_ = &control;
    started_ = std::chrono::steady_clock::now();
    timed_out_ = false;
    ++job_number_;
    wake_watchdog = watchdog_parked_;
  }
  // A watchdog already waiting for a heartbeat or deadline of an earlier job wakes no
  // later than this job needs (same pool: same timeout and heartbeat interval), so
  // back-to-back jobs cost it no wake-up at all.
  if (wake_watchdog) changed_.notify_all();
  InProcessContext context(pool_.name, control, timed_out_, mutex_);
  JobResult result;
  try {
    result = (*fn)(job, context);
  } catch (const std::exception& e) {
    result = JobResult::failed(std::string("exception: ") + e.what());
  } catch (...) {
    result = JobResult::failed("unknown exception");
  }
  if (::getpid() != worker_pid_) {
    // The handler forked and its child returned here: a second worker unknown to the
    // supervisor, taking jobs on a copy of this one's connection and lease.
    spdlog::error("pool={} pid={} job={}: a process the in-process handler forked returned from it into the "
                  "worker: it exits (end a fork's child with _exit, or exec)",
                  pool_.name, ::getpid(), job.id);
    spdlog::default_logger()->flush();
    ::_exit(70);
  }
  bool timed_out;
  {
    std::lock_guard lock(mutex_);
    current_ = nullptr;
    control_ = nullptr;
    timed_out = timed_out_;
  }
  if (timed_out)
    return {HandlerOutcome::Kind::timeout, fmt::format("timeout after {}ms", control.timeout.count())};
  if (control.fast_stop && control.fast_stop() && result.outcome != JobResult::Outcome::done)
    return {HandlerOutcome::Kind::given_back, "stopped by TERM"};
  switch (result.outcome) {
    case JobResult::Outcome::done: return {};
    case JobResult::Outcome::retry: return {HandlerOutcome::Kind::retry, result.error};
    case JobResult::Outcome::failed: return {HandlerOutcome::Kind::failed, result.error};
  }
  return {};
}

void InProcessHandler::give_up(std::unique_ptr<JobSource>& source, const Job& watched, const char* after,
                               const char* action,
                               const std::function<void(JobSource&, const Job&)>& record) {
  Job job = watched;
  spdlog::error("pool={} pid={} job={}: in-process handler still running {}ms after {}: {} and "
                "exiting the worker",
                pool_.name, ::getpid(), job.id, control_->grace.count(), after, action);
  record_and_exit(source, job, record, 3);
}

void InProcessHandler::record_and_exit(std::unique_ptr<JobSource>& source, const Job& job,
                                       const std::function<void(JobSource&, const Job&)>& record, int status) {
  try {
    if (!source) source = open_job_source(source_);
    // This worker's lease: the same worker id, so the source takes what it records.
    record(*source, job);
  } catch (const std::exception& e) {
    spdlog::error("pool={} job={}: could not record it ({}); the lease will expire", pool_.name, job.id,
                  e.what());
  }
  spdlog::default_logger()->flush();
  ::_exit(status);
}

// exit() from a handler (or a library it calls) ended the worker with the job still
// leased: it waited out its lease, and came back without a word of why. It is failed
// now, its attempt counted (a handler that always exits ends dead, not in a loop).
void InProcessHandler::exit_during_job() {
  InProcessHandler* self = handler_of_this_worker;
  if (!self || ::getpid() != self->worker_pid_) return;  // a fork's child: not its job
  Job job;
  {
    std::lock_guard lock(self->mutex_);
    if (!self->current_) return;
    job = *self->current_;
  }
  spdlog::error("pool={} pid={} job={}: the in-process handler called exit() during the job: failing the "
                "job and ending the worker (a handler returns JobResult::failed or retry instead)",
                self->pool_.name, ::getpid(), job.id);
  std::unique_ptr<JobSource> source;
  // Not on through exit() (_exit: static destructors would run under the watchdog thread).
  self->record_and_exit(source, job, [self](JobSource& s, const Job& failed) {
    s.fail(failed, "the handler called exit()",
           decide_retry(self->pool_.jobs.retry, failed.attempt, failed.max_attempts));
  }, 70);
}

void InProcessHandler::watchdog() {
  std::unique_ptr<JobSource> source;  // its own connection: the main thread owns the other
  std::unique_lock lock(mutex_);
  auto next_heartbeat = std::chrono::steady_clock::time_point::max();
  uint64_t watched_number = 0;
  std::optional<std::chrono::steady_clock::time_point> term_seen;  // of the watched job
  while (!quitting_) {
    const Job* watched = current_;
    if (!watched) {
      watchdog_parked_ = true;
      changed_.wait(lock);
      watchdog_parked_ = false;
      continue;
    }
    if (job_number_ != watched_number) {
      watched_number = job_number_;
      next_heartbeat = started_ + control_->heartbeat_every;
      term_seen.reset();
    }
    auto now = std::chrono::steady_clock::now();
    // TERM (a fast stop) asks the job to stop (stop_requested()); one still running
    // timeout_grace later is given back, as an exec handler's job is, and the worker
    // exits. It used to run on until the supervisor's graceful_timeout KILLed the
    // worker, and the job, its attempt counted, waited for its lease.
    if (!term_seen && control_->fast_stop && control_->fast_stop()) term_seen = now;
    if (term_seen && now >= *term_seen + control_->grace)
      give_up(source, *watched, "TERM", "giving the job back",
              [](JobSource& s, const Job& job) { s.release(job); });
    auto timeout = control_->timeout;
    auto deadline = timeout.count() > 0 ? started_ + timeout : std::chrono::steady_clock::time_point::max();
    auto kill_at = timeout.count() > 0 ? deadline + control_->grace : deadline;
    if (now >= kill_at)
      give_up(source, *watched, "its timeout", "failing the job", [&](JobSource& s, const Job& job) {
        s.fail(job, fmt::format("timeout after {}ms", timeout.count()),
               decide_retry(pool_.jobs.retry, job.attempt, job.max_attempts));
      });
    if (now >= deadline && !timed_out_) timed_out_ = true;
    if (now >= next_heartbeat) {
      try {
        if (!source) source = open_job_source(source_);
        source->extend_lease(*watched);
      } catch (const std::exception& e) {
        spdlog::warn("pool={} job={}: lease heartbeat failed: {}", pool_.name, watched->id, e.what());
      }
      next_heartbeat = now + control_->heartbeat_every;
    }
    auto wake = std::min(next_heartbeat, now >= deadline ? kill_at : deadline);
    // TERM is a flag the signal handler sets, not something to wait on: while a job
    // runs it is looked at every 250 ms (a grace is at most that much longer).
    wake = std::min(wake, term_seen ? *term_seen + control_->grace : now + std::chrono::milliseconds(250));
    changed_.wait_until(lock, wake);
  }
}

}  // namespace preforkd
