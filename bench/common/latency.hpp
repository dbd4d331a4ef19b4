// Enqueue-to-start latency, measured the same way by every job benchmark: an idle
// in_process pool (bench_jobs_inproc), whose handler appends "now - t" in ns for each
// job's payload {"t": CLOCK_MONOTONIC ns} to the file named by BENCH_LATENCY_FILE.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace preforkd {
class JobSource;
}

namespace bench {

struct LatencySamples {
  std::vector<double> ms;
  std::vector<std::string> problems;  // in the order they happened
};

// With `daemon` just started on `source`'s queue "bench" and BENCH_LATENCY_FILE=latency_file:
// 4 warm-up jobs (both workers up and through a job each; 30 s), 300 ms idle, then `jobs`
// timestamped jobs gap_ms apart, one by one (60 s for all). done_count() reads the pool's
// finished jobs (polled every 5 ms). Stops the daemon (QUIT by pid, KILL after 20 s) and
// returns the samples; `log` is the daemon's, quoted in a problem.
LatencySamples measure_latency(preforkd::JobSource& source, pid_t daemon, const std::string& latency_file,
                               const std::string& log, int jobs, int gap_ms,
                               const std::function<long long()>& done_count);

}  // namespace bench
