// The in-process handler: the C++ function registered for the job's queue, run in the
// worker child itself. A watchdog thread keeps the lease alive and enforces the
// timeout: at the deadline the job sees stop_requested(); `timeout_grace` later the
// job is failed with "timeout" on the watchdog's own connection and the worker exits
// (a thread cannot be killed; its process can).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "handlers/handler.hpp"
#include "preforkd/job_handler.hpp"
#include "preforkd/job_source.hpp"

namespace preforkd {

class InProcessHandler final : public Handler {
 public:
  InProcessHandler(const PoolConfig& pool, const SourceConfig& source);
  ~InProcessHandler() override;
  HandlerOutcome run(const Job& job, const RunControl& control) override;

 private:
  void watchdog();
  // The watched job still runs timeout_grace after `after` (a timeout, TERM): logs
  // "`action` and exiting the worker", records it with `record` on the watchdog's own
  // connection (opened into `source` if need be), and ends the worker (exit 3).
  [[noreturn]] void give_up(std::unique_ptr<JobSource>& source, const Job& watched, const char* after,
                            const char* action, const std::function<void(JobSource&, const Job&)>& record);
  // From atexit: the handler called exit() during a job (see in_process_handler.cpp).
  static void exit_during_job();
  // Records `job` with `record` on the handler's own connection (opened into `source`
  // if need be), flushes the log and ends the worker with `status`.
  [[noreturn]] void record_and_exit(std::unique_ptr<JobSource>& source, const Job& job,
                                    const std::function<void(JobSource&, const Job&)>& record, int status);

  const PoolConfig& pool_;
  const SourceConfig& source_;
  std::mutex mutex_;
  std::condition_variable changed_;
  const Job* current_ = nullptr;
  uint64_t job_number_ = 0;  // counts run() calls: the same Job object is reused
  bool watchdog_parked_ = false;  // waiting without a deadline: a new job must wake it
  const RunControl* control_ = nullptr;
  std::chrono::steady_clock::time_point started_;
  bool timed_out_ = false;
  bool quitting_ = false;
  std::thread thread_;
  pid_t worker_pid_ = 0;  // the worker that runs the jobs (set at the first one)
};

}  // namespace preforkd
