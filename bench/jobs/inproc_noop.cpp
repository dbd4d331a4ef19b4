// The in-process side of the jobs bench: a program that links libpreforkd, registers a
// no-op handler for queue "bench" and runs the preforkd command line (-c FILE).
//
// Latency mode: a payload {"t":NANOSECONDS} carries the enqueuer's CLOCK_MONOTONIC time
// (system-wide, so comparable across processes); the handler appends "now - t" in
// nanoseconds, one number a line, to $BENCH_LATENCY_FILE (O_APPEND: both workers share it).
#include <fcntl.h>
#include <malloc.h>
#include <sqlite3.h>
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
  // Diagnosis only (off by default, the bench measures preforkd as it is):
  //   BENCH_SQLITE_BULK_PAGES=N  each SQLite connection takes its first N cache pages in one
  //                              allocation that is never freed (SQLITE_CONFIG_PAGECACHE)
  //   BENCH_MALLOC_TRIM=BYTES    glibc keeps up to BYTES of free heap top (M_TRIM_THRESHOLD)
  if (const char* pages = std::getenv("BENCH_SQLITE_BULK_PAGES"))
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, std::atoi(pages));
  if (const char* trim = std::getenv("BENCH_MALLOC_TRIM")) ::mallopt(M_TRIM_THRESHOLD, std::atoi(trim));
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
