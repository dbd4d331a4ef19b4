// In-process job handlers: C++ functions that a program linking libpreforkd registers
// per queue, run inside the jobs pool's worker child (no exec, no pipe per job).
//
//   preforkd::register_job_handler("thumbnails", [](const preforkd::Job& job,
//                                                   preforkd::JobContext& ctx) {
//     auto request = nlohmann::json::parse(job.payload);
//     if (!resize(request, ctx)) return preforkd::JobResult::retry("store busy");
//     return preforkd::JobResult::done();
//   });
//   return preforkd::run_main(argc, argv);
//
// and in the YAML:  pools: { thumbs: { queues: [thumbnails], handler: in_process } }
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "preforkd/job.hpp"

namespace preforkd {

struct JobResult {
  enum class Outcome { done, retry, failed } outcome = Outcome::done;
  std::string error;

  static JobResult done() { return {}; }
  // A temporary problem: run again after the retry backoff (counts as an attempt).
  static JobResult retry(std::string why) { return {Outcome::retry, std::move(why)}; }
  // A failure: the retry policy decides whether it runs again or goes dead.
  static JobResult failed(std::string why) { return {Outcome::failed, std::move(why)}; }
};

// What a running in-process job may ask. A long job should check stop_requested()
// (a fast stop or its timeout) at safe points and return; a job still running
// `timeout_grace` after its timeout is failed with "timeout" and its worker exits.
class JobContext {
 public:
  virtual ~JobContext() = default;
  virtual bool stop_requested() const = 0;  // TERM received or timeout reached
  virtual bool timed_out() const = 0;
  virtual const std::string& pool() const = 0;
};

using JobFunction = std::function<JobResult(const Job&, JobContext&)>;

void register_job_handler(const std::string& queue, JobFunction fn);
const JobFunction* find_job_handler(const std::string& queue);
std::vector<std::string> registered_job_handlers();

}  // namespace preforkd
