// What the jobs tests share: a temporary directory with a config and a job log,
// preforkctl runs, and the log of job runs written by the test handlers
// ("run ID ATTEMPT PID QUEUE" / "end ID ATTEMPT PID").
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/harness.hpp"

namespace harness {

struct JobRun {
  std::string id;
  int attempt = 0;
  pid_t pid = 0;
  std::string queue;
  bool ended = false;
};

class JobsFixture {
 public:
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");
  std::string job_log = dir.file("jobs.log");
  std::vector<std::string> env{"TEST_JOB_LOG=" + job_log};

  // preforkctl -c config ARGS...
  RunResult ctl(const std::vector<std::string>& args, const std::string& input = "") const;
  // Enqueues and returns the id (fails the test when preforkctl fails).
  std::string enqueue(const std::string& queue, const std::string& payload,
                      const std::vector<std::string>& extra = {}) const;
  std::vector<std::string> enqueue_batch(const std::string& queue, const std::vector<std::string>& payloads) const;
  // `source`: for a file with several sources (ids are per source).
  nlohmann::json job(const std::string& id, const std::string& source = "") const;
  std::string state(const std::string& id, const std::string& source = "") const {
    return job(id, source).value("state", "?");
  }
  bool wait_state(const std::string& id, const std::string& state, Millis timeout = 60s) const;
  // Jobs per state on `queue` ("queued", "running", "retry", "done", "dead").
  std::map<std::string, int64_t> stats(const std::string& queue) const;
  bool wait_done(const std::string& queue, int64_t count, Millis timeout = 60s) const;

  std::vector<JobRun> runs() const;  // in log order
  std::map<std::string, int> ends_per_job() const;
};

// A jobs pool in YAML: `handler` is the YAML of the handler ({ exec: [...] } ...).
std::string jobs_pool(const std::string& name, const std::string& handler,
                      const std::vector<std::string>& queues, int workers,
                      const std::string& extra = "");
std::string exec_handler();        // { exec: [test_handler, exec] }

// A dead job whose unique key another job has taken since: `preforkctl retry` refuses
// it with a message that names the holder, and both stay as they were. `f.config` has a
// pool with an exec handler on `queue`.
void expect_retry_refused_while_its_unique_key_is_held(const JobsFixture& f, const std::string& queue);
std::string persistent_handler();  // { persistent: [test_handler, persistent] }

// `preforkctl delete`, before any worker runs: one job of `queue` by id (with an unknown
// id beside it), and every job of a mistyped queue (due now, due in an hour, one with a
// unique key) by queue. They never run, and their unique keys are free at once. Then,
// with the pool of `f.config` running (one worker on `queue`): a running job is refused
// by id; `--state dead` takes the dead one and says nothing of the running one; the
// whole queue then takes the done ones and says it left the running one. The counts of
// `stats` follow.
// Starts and stops its own Daemon.
void expect_deleted_jobs_never_run_and_running_ones_are_left_alone(const JobsFixture& f,
                                                                   const std::string& queue);

// kill -9 of the one worker of `f.config` (its source leasing 5 jobs per claim, jobs
// with max_attempts 1) while the first of a batch of five runs: no job of the batch is
// charged, and each then runs alone; a second kill -9 of the job, now alone, is charged
// (dead), and the other four run once each. Starts and stops its own Daemon.
void expect_a_killed_batch_charges_only_the_job_that_kills_a_worker_alone(const JobsFixture& f,
                                                                          const std::string& queue);
// The same source settings, jobs with max_attempts 2, and a killed worker respawned only
// once its lease has run out (err_respawn_interval longer than the lease): a job that
// runs alone and whose worker is killed is charged, and is claimed alone again though
// four jobs wait behind it; killed again, it is dead without a third run, and the four
// run once each.
void expect_a_job_whose_worker_died_is_claimed_alone_from_then_on(const JobsFixture& f,
                                                                   const std::string& queue);

}  // namespace harness
