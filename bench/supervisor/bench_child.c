/* The tiny child program both supervisors exec in the exec'd-children runs, and that
 * the bare fork+exec loop runs. It reports to the bench on the FIFO $BENCH_FIFO, one
 * line per event, "<tag> <pid> <CLOCK_MONOTONIC ns>\n" (shorter than PIPE_BUF, so
 * lines from many children never interleave):
 *   R  ready (first thing after start)     B  a piece of work started
 *   D  that piece of work finished
 * $BENCH_MODE says what it does after R:
 *   exit   exit 0 at once (churn)
 *   idle   wait for QUIT/TERM/INT, then exit 0
 *   work   on each USR1 do $BENCH_WORK_MS ms of work (B ... D); QUIT/TERM/INT are
 *          held until the piece of work is done, then the child exits 0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag = 0;
static volatile sig_atomic_t go_flag = 0;

static void on_stop(int signo) { (void)signo; stop_flag = 1; }
static void on_go(int signo) { (void)signo; go_flag = 1; }

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void report(const char* fifo, char tag) {
  char line[64];
  int len = snprintf(line, sizeof line, "%c %d %lld\n", tag, (int)getpid(), now_ns());
  int fd = open(fifo, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = write(fd, line, (size_t)len);
  (void)n;
  close(fd);
}

/* Work that a signal does not cut short: sleep to an absolute deadline. */
static void work(long ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {}
}

int main(void) {
  const char* fifo = getenv("BENCH_FIFO");
  const char* mode = getenv("BENCH_MODE");
  const char* work_ms = getenv("BENCH_WORK_MS");
  if (!fifo || !mode) {
    fprintf(stderr, "bench_child: BENCH_FIFO and BENCH_MODE must be set\n");
    return 2;
  }
  if (strcmp(mode, "exit") == 0) {
    report(fifo, 'R');
    return 0;
  }
  /* The signals stay blocked outside sigsuspend: a stop that arrives during work is
   * noticed after the work, never in the middle of it. */
  sigset_t handled, waiting;
  sigemptyset(&handled);
  sigaddset(&handled, SIGQUIT);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGUSR1);
  sigprocmask(SIG_BLOCK, &handled, &waiting);
  sigdelset(&waiting, SIGQUIT);
  sigdelset(&waiting, SIGTERM);
  sigdelset(&waiting, SIGINT);
  sigdelset(&waiting, SIGUSR1);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  sigemptyset(&action.sa_mask);
  action.sa_handler = on_stop;
  sigaction(SIGQUIT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);
  action.sa_handler = on_go;
  sigaction(SIGUSR1, &action, NULL);

  report(fifo, 'R');
  long ms = work_ms ? atol(work_ms) : 200;
  for (;;) {
    while (!stop_flag && !go_flag) sigsuspend(&waiting);
    if (go_flag && strcmp(mode, "work") == 0) {
      go_flag = 0;
      report(fifo, 'B');
      work(ms);
      report(fifo, 'D');
    }
    go_flag = 0;
    if (stop_flag) return 0;
  }
}
