// Jobs as the queue backends and handlers see them: what is enqueued (NewJob), what a
// worker leases (Job), what the retry policy decides, and what an operator inspects.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace preforkd {

using SystemTime = std::chrono::system_clock::time_point;

enum class JobState { queued, running, done, retry, dead };
const char* job_state_name(JobState state);
std::optional<JobState> job_state_from_name(const std::string& name);

// Letters, digits, '_', '.', ':', '-'; 1 to 200 characters.
bool is_valid_queue_name(const std::string& name);

struct NewJob {
  std::string queue;
  std::string payload = "null";      // JSON text
  std::optional<SystemTime> run_at;  // empty: now
  int priority = 0;                  // higher runs first within a queue
  std::string unique_key;            // empty: none
  int max_attempts = 0;              // 0: the pool's retry.max_attempts
};

// The outcome of an enqueue: a new job, or the job that already holds the unique key.
struct EnqueueResult {
  std::string id;
  bool duplicate = false;
};

// A job leased to one worker until lease_until.
struct Job {
  std::string id;
  std::string queue;
  std::string payload;
  int attempt = 1;       // 1 on the first run
  int max_attempts = 0;  // 0: the pool's retry.max_attempts
  int priority = 0;
  // Who holds the lease, as the backend names it (a Redis worker connection); the
  // source that completes or fails the job may be another connection of the same worker.
  std::string lease_holder;
};

// What happens to a job whose run failed: run again after `delay`, or give up (dead).
struct RetryDecision {
  bool retry = false;
  std::chrono::milliseconds delay{0};
  // false: the attempt this claim counted never ran (runs that did not report had used
  // them all); the job is dead with that attempt not counted.
  bool attempt_ran = true;
};

// Everything known about one job, for `preforkctl job` / `jobs`.
struct JobInfo {
  std::string id;
  std::string queue;
  std::string payload;
  JobState state = JobState::queued;
  int priority = 0;
  int attempts = 0;
  int max_attempts = 0;
  std::string unique_key;
  std::string last_error;
  std::string locked_by;
  SystemTime created_at{}, run_at{};
  std::optional<SystemTime> started_at, finished_at, lease_until;
};

struct QueueStats {
  std::string queue;
  int64_t queued = 0;   // due or delayed, never run or put back
  int64_t running = 0;
  int64_t retry = 0;    // waiting for their backoff
  int64_t done = 0;
  int64_t dead = 0;

  void add(JobState state, int64_t count);
};

}  // namespace preforkd
