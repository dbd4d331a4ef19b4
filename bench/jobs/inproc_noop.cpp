// The in-process side of the jobs bench: a program that links libpreforkd, registers a
// no-op handler for queue "bench" and runs the preforkd command line (-c FILE).
//
// Latency mode: a payload {"t":NANOSECONDS} carries the enqueuer's CLOCK_MONOTONIC time
// (system-wide, so comparable across processes); the handler appends "now - t" in
// nanoseconds, one number a line, to $BENCH_LATENCY_FILE (O_APPEND: both workers share it).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "preforkd/job_handler.hpp"
#include "preforkd/supervisor.hpp"

namespace {

long long now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

int latency_fd = -2;

}  // namespace

int main(int argc, char** argv) {
  preforkd::register_job_handler("bench", [](const preforkd::Job& job, preforkd::JobContext&) {
    long long start = now_ns();
    const char* p = std::strstr(job.payload.c_str(), "\"t\":");
    if (p) {
      long long sent = std::strtoll(p + 4, nullptr, 10);
      if (latency_fd == -2) {
        const char* path = std::getenv("BENCH_LATENCY_FILE");
        latency_fd = path ? ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
      }
      if (latency_fd >= 0) {
        char line[32];
        int n = std::snprintf(line, sizeof line, "%lld\n", start - sent);
        [[maybe_unused]] ssize_t w = ::write(latency_fd, line, static_cast<size_t>(n));
      }
    }
    return preforkd::JobResult::done();
  });
  return preforkd::run_main(argc, argv);
}
