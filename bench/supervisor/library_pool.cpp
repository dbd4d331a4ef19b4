// preforkd's in-process side of the bench: a program that links libpreforkd,
// registers the worker function "bench" and runs the preforkd command line. Each
// child does what bench_child.c does (same FIFO lines, same modes), but through the
// ChildContext API: QUIT/TERM arrive as stop_requested(), not as the child's own
// signal handlers.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "preforkd/supervisor.hpp"
#include "preforkd/worker_function.hpp"

namespace {

volatile sig_atomic_t go_flag = 0;
void on_go(int) { go_flag = 1; }

long long now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void report(const char* fifo, char tag) {
  char line[64];
  int len = std::snprintf(line, sizeof line, "%c %d %lld\n", tag, static_cast<int>(::getpid()),
                          now_ns());
  int fd = ::open(fifo, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  [[maybe_unused]] ssize_t n = ::write(fd, line, static_cast<size_t>(len));
  ::close(fd);
}

// Work that a signal does not cut short: sleep to an absolute deadline.
void work(long ms) {
  timespec until{};
  ::clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
  }
}

int bench_worker(preforkd::ChildContext& ctx) {
  const char* fifo = std::getenv("BENCH_FIFO");
  const char* mode_env = std::getenv("BENCH_MODE");
  const char* work_ms = std::getenv("BENCH_WORK_MS");
  if (!fifo || !mode_env) return 2;
  std::string mode = mode_env;
  struct sigaction action {};
  action.sa_handler = on_go;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGUSR1, &action, nullptr);

  ctx.ready();
  report(fifo, 'R');
  if (mode == "exit") return 0;
  long ms = work_ms ? std::atol(work_ms) : 200;
  for (;;) {
    // wait_for_stop does not wake on USR1; the short timeout bounds how late a "go"
    // is seen. That only delays the start of work, which the bench waits for anyway.
    while (!go_flag && !ctx.wait_for_stop(std::chrono::milliseconds(mode == "work" ? 5 : 60000))) {
    }
    if (go_flag && mode == "work") {
      go_flag = 0;
      ctx.busy("bench");
      report(fifo, 'B');
      work(ms);
      report(fifo, 'D');
      ctx.idle();
    }
    go_flag = 0;
    if (ctx.stop_requested()) return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  preforkd::register_worker_function("bench", bench_worker);
  return preforkd::run_main(argc, argv);
}
