// exec: one fork+exec per job, no shell. The payload on stdin, the job in the
// environment (PREFORK_JOB_ID, PREFORK_QUEUE, PREFORK_ATTEMPT); exit 0 = done, anything
// else a failure for the retry policy (75, EX_TEMPFAIL, only words it as a retry asked for).
#include <sys/wait.h>

#include "handlers/exec_handler.hpp"
#include "handlers/handler_process.hpp"
#include "util/log.hpp"

namespace preforkd {

constexpr int exit_tempfail = 75;

ExecHandler::ExecHandler(const PoolConfig& pool) : pool_(pool) {}

HandlerOutcome ExecHandler::run(const Job& job, const RunControl& control) {
  std::string prefix = fmt::format("pool={} pid={} job={}", pool_.name, ::getpid(), job.id);
  HandlerProcess process(pool_.jobs.handler.argv,
                         {"PREFORK_JOB_ID=" + job.id, "PREFORK_QUEUE=" + job.queue,
                          "PREFORK_ATTEMPT=" + std::to_string(job.attempt)},
                         false, prefix, pool_.jobs.max_output_logged);
  // A handler that does not read its stdin is fine: the write fails with EPIPE.
  process.write_stdin(job.payload, true);
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (control.timeout.count() > 0) deadline = std::chrono::steady_clock::now() + control.timeout;
  switch (process.wait(false, deadline, control, nullptr)) {
    case HandlerProcess::Event::timed_out:
      process.stop(control);
      return {HandlerOutcome::Kind::timeout, fmt::format("timeout after {}ms", control.timeout.count())};
    case HandlerProcess::Event::fast_stop:
      process.stop(control);
      return {HandlerOutcome::Kind::given_back, "stopped by TERM"};
    case HandlerProcess::Event::line:
    case HandlerProcess::Event::line_too_long:  // only with capture_stdout, not used here
    case HandlerProcess::Event::exited: break;
  }
  int status = *process.wait_status();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (WIFEXITED(status) && WEXITSTATUS(status) == exit_tempfail)
    return {HandlerOutcome::Kind::retry, "handler asked for a retry (exit status 75)"};
  return {HandlerOutcome::Kind::failed, "handler " + process.describe_exit()};
}

}  // namespace preforkd
