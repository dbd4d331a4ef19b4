/* The bare limit: a plain C loop of fork (+ exec of bench_child) + waitpid, with no
 * supervisor logic at all. The children report on $BENCH_FIFO exactly as under a
 * supervisor (bench_child with BENCH_MODE=exit), so the bench counts them the same way.
 *
 *   bare_fork churn SECONDS CHILD   fork+exec+waitpid one child after the other
 *   bare_fork burst N CHILD         fork+exec N children back to back, then reap them
 *   bare_fork latency K CHILD       K times: note the fork time ("F <pid> <ns>" on the
 *                                   FIFO), fork+exec, waitpid, pause 10 ms
 * CHILD "-" means fork only: the forked child reports R itself and _exits (the limit
 * for in-process children).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void report(const char* fifo, char tag, pid_t pid, long long ns) {
  char line[64];
  int len = snprintf(line, sizeof line, "%c %d %lld\n", tag, (int)pid, ns);
  int fd = open(fifo, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = write(fd, line, (size_t)len);
  (void)n;
  close(fd);
}

static const char* fifo;
static const char* child;

static pid_t start_child(void) {
  pid_t pid = fork();
  if (pid == 0) {
    if (strcmp(child, "-") == 0) {
      report(fifo, 'R', getpid(), now_ns());
      _exit(0);
    }
    char* argv[] = {(char*)child, NULL};
    execve(child, argv, environ);
    _exit(127);
  }
  if (pid < 0) perror("bare_fork: fork");
  return pid;
}

int main(int argc, char** argv) {
  fifo = getenv("BENCH_FIFO");
  if (argc != 4 || !fifo) {
    fprintf(stderr, "usage: BENCH_FIFO=PATH bare_fork churn SECONDS|burst N|latency K CHILD\n");
    return 2;
  }
  child = argv[3];
  int status;
  if (strcmp(argv[1], "churn") == 0) {
    long long until = now_ns() + (long long)(atof(argv[2]) * 1e9);
    while (now_ns() < until) {
      pid_t pid = start_child();
      if (pid > 0) waitpid(pid, &status, 0);
    }
  } else if (strcmp(argv[1], "burst") == 0) {
    int n = atoi(argv[2]);
    for (int i = 0; i < n; ++i) start_child();
    while (wait(&status) > 0) {}
  } else if (strcmp(argv[1], "latency") == 0) {
    int k = atoi(argv[2]);
    for (int i = 0; i < k; ++i) {
      long long forked_at = now_ns();
      pid_t pid = start_child();
      if (pid <= 0) continue;
      report(fifo, 'F', pid, forked_at);
      waitpid(pid, &status, 0);
      struct timespec pause = {0, 10 * 1000000L};
      nanosleep(&pause, NULL);
    }
  } else {
    fprintf(stderr, "bare_fork: unknown mode '%s'\n", argv[1]);
    return 2;
  }
  return 0;
}
