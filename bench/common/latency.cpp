#include "common/latency.hpp"

#include <signal.h>

#include <fstream>

#include "common/files.hpp"
#include "common/polling.hpp"
#include "common/processes.hpp"
#include "common/timing.hpp"
#include "preforkd/job_source.hpp"

namespace bench {

LatencySamples measure_latency(preforkd::JobSource& source, pid_t daemon, const std::string& latency_file,
                               const std::string& log, int jobs, int gap_ms,
                               const std::function<long long()>& done_count) {
  LatencySamples result;
  auto done_by = [&](long long want, double deadline_s) {
    return poll_until(done_count, [want](long long c) { return c >= want; }, deadline_s, 5, {daemon}) >= want;
  };
  const int warmup = 4;
  for (int i = 0; i < warmup; ++i) {
    preforkd::NewJob job;
    job.queue = "bench";
    job.payload = "{\"warmup\":1}";
    source.enqueue(job);
  }
  if (!done_by(warmup, 30)) {
    result.problems.push_back("latency: warm-up jobs not done in 30s; log:\n" + tail_of(log));
  } else {
    sleep_ms(300);
    for (int i = 0; i < jobs; ++i) {
      preforkd::NewJob job;
      job.queue = "bench";
      job.payload = "{\"t\":" + std::to_string(now_ns()) + "}";  // read just before enqueue()
      source.enqueue(job);
      sleep_ms(gap_ms);
    }
    if (!done_by(warmup + jobs, 60)) result.problems.push_back("latency: not every job done in 60s; log:\n" + tail_of(log));
  }
  stop_process(daemon, SIGQUIT, 20);
  std::ifstream in(latency_file);
  for (long long ns; in >> ns;) result.ms.push_back(static_cast<double>(ns) / 1e6);
  if (result.ms.size() != static_cast<size_t>(jobs))
    result.problems.push_back("latency: " + std::to_string(result.ms.size()) + " samples for " +
                              std::to_string(jobs) + " jobs");
  return result;
}

}  // namespace bench
