// The JobSource interface: one queue backend (SQLite, Redis, PostgreSQL, ...) behind one
// small API, and the registry that maps a `type:` in the YAML to the backend. A new
// backend is one folder under src/sources/ and one PREFORKD_REGISTER_JOB_SOURCE line.
//
// A worker child opens its own JobSource after fork and loops
//   fetch -> handle -> complete | fail | release
// Every method throws SourceError when the backend cannot be reached or refuses; a
// job is never silently dropped: a lease that is not completed comes back.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "preforkd/job.hpp"

namespace preforkd {

class SourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A write that was sent but whose answer was lost (the connection broke before the
// server replied to a COMMIT or an enqueue script): it may or may not have been done.
// `done_before`: the jobs of the same call known to be written before it (a Redis batch
// goes in chunks), in order.
class OutcomeUnknown : public SourceError {
 public:
  OutcomeUnknown(const std::string& what, std::vector<std::string> done_before = {})
      : SourceError(what), done_before(std::move(done_before)) {}
  std::vector<std::string> done_before;  // ids
};

// An unknown id, a job in the wrong state for the request: the caller's mistake.
class JobNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JobFilter {
  std::string queue;               // empty: every queue
  std::optional<JobState> state;   // empty: every state
  size_t limit = 100;
};

class JobSource {
 public:
  virtual ~JobSource() = default;

  // Waits up to `wait` for the next due job on `queues` (strict priority order: a job
  // on queues[0] always wins) and leases it to this worker for the source's lease time.
  // Returns early with nullopt when interrupt_fd() (if set) becomes readable.
  virtual std::optional<Job> fetch(std::span<const std::string> queues,
                                   std::chrono::milliseconds wait) = 0;
  virtual void complete(const Job& job) = 0;
  virtual void fail(const Job& job, std::string_view reason, RetryDecision retry) = 0;
  // Gives the job back untouched (a fast stop): queued again, the attempt not counted.
  virtual void release(const Job& job) = 0;
  // Keeps the lease of a long-running job alive (heartbeat).
  virtual void extend_lease(const Job& job) = 0;
  virtual std::chrono::milliseconds lease_time() const = 0;

  virtual EnqueueResult enqueue(const NewJob& job) = 0;
  // Many jobs in one transaction / round trip (preforkctl enqueue --batch).
  virtual std::vector<EnqueueResult> enqueue_batch(std::span<const NewJob> jobs) = 0;

  // Operator views.
  virtual std::vector<QueueStats> stats() = 0;
  virtual JobInfo get(const std::string& id) = 0;  // throws JobNotFound
  virtual std::vector<JobInfo> list(const JobFilter& filter) = 0;
  // A dead (or retry-waiting) job back to queued now, attempts reset. Throws JobNotFound.
  virtual void retry_now(const std::string& id) = 0;
  // Deletes a job that is not running (queued, retry-waiting, dead or done) and frees
  // its unique key. Throws JobNotFound for an unknown id, and for a running job: its
  // worker still reports on it, so it can be deleted once it has finished.
  virtual void remove(const std::string& id) = 0;
  // Deletes every job of `queue` whose state is one of `states` (a running job never,
  // whatever `states` says); returns how many.
  virtual int64_t remove_queue(const std::string& queue, std::span<const JobState> states) = 0;

  // What this source still holds that it has not written, taken out of it after it
  // failed (a lost connection): jobs this worker finished whose result waits for the
  // next statement (deferred acks), and jobs leased ahead (prefetch) and not started.
  // The worker settles them on the source that replaces this one (complete, release),
  // so that a lost connection neither runs a finished job again nor burns an attempt of
  // one never started. A source that defers nothing keeps the default.
  struct Unsettled {
    std::vector<Job> done;
    std::vector<Job> not_started;  // in the order they were leased
  };
  virtual Unsettled take_unsettled() { return {}; }

  // An fd that, when readable, makes fetch() return at once (a worker's stop pipe).
  void set_interrupt_fd(int fd) { interrupt_fd_ = fd; }
  int interrupt_fd() const { return interrupt_fd_; }

 private:
  int interrupt_fd_ = -1;
};

// One `sources:` entry of the YAML: its name, type and the type's own settings, as
// validated scalars; relative paths resolve against base_dir (the config's directory).
struct SourceConfig {
  std::string name;
  std::string type;
  std::map<std::string, std::string> settings;
  std::string base_dir;
  std::string node;  // this supervisor's name (the `node:` key, default the host name)
  // Where it is defined, "FILE:LINE:COL" of its `sources:` entry, for the messages of a
  // source that cannot be used; the config file alone for the implied default source.
  std::string defined_at;
};

// What a backend tells the config loader and the workers.
struct JobSourceType {
  // Keys the type accepts under its `sources.NAME:` entry (besides `type`).
  std::vector<std::string> keys;
  // Of those, the ones a source must give, each with what it is (for the message):
  // {"url", "a libpq conninfo (host=... dbname=...) or a postgresql:// URL"}.
  std::vector<std::pair<std::string, std::string>> required;
  // Checks one setting; returns "" when fine, else the message (what and what to do).
  std::function<std::string(const std::string& key, const std::string& value)> check;
  // Opens a connection. `worker_id` names the leaseholder ("node:pid").
  std::function<std::unique_ptr<JobSource>(const SourceConfig&, const std::string& worker_id)>
      open;
  // The local files that hold the jobs (absolute paths), if any: the config loader
  // refuses a pidfile or log file that would overwrite one. May be left empty.
  std::function<std::vector<std::string>(const SourceConfig&)> files;
};

void register_job_source_type(const std::string& type, JobSourceType definition);
const JobSourceType* find_job_source_type(const std::string& type);
std::vector<std::string> job_source_types();

// Opens the configured source `config` for this process (worker id "node:pid").
std::unique_ptr<JobSource> open_job_source(const SourceConfig& config);

}  // namespace preforkd

// Registers a backend at static-initialisation time: one line in the backend's folder.
#define PREFORKD_REGISTER_JOB_SOURCE(type, definition_fn)                       \
  namespace {                                                                  \
  const bool preforkd_registered_##definition_fn = [] {                        \
    ::preforkd::register_job_source_type(type, definition_fn());               \
    return true;                                                               \
  }();                                                                         \
  }
