// fork + child reset + exec (or run the registered function). See spawn.hpp.
#include "supervisor/spawn.hpp"

#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdio_ext.h>
#include <sys/socket.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "supervisor/status_report.hpp"
#include "util/credentials.hpp"
#include "util/log.hpp"
#include "worker/child_context.hpp"
#include "worker/job_worker.hpp"

extern char** environ;

namespace preforkd {
namespace {

std::vector<std::string> child_environment(const PoolConfig& pool, unsigned generation,
                                           const std::string& cwd) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text(*entry);
    auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    merged[std::string(text.substr(0, eq))] = std::string(text.substr(eq + 1));
  }
  // The supervisor's own systemd and status plumbing is not the child's business.
  merged.erase("NOTIFY_SOCKET");
  merged.erase("WATCHDOG_USEC");
  merged.erase("WATCHDOG_PID");
  // A child switched to another user gets that user's login variables, as systemd's
  // User= gives them (root's HOME sent a worker's caches to a directory it cannot
  // write); the pool's `env` still has the last word.
  if (!pool.user.empty() && ::geteuid() == 0) {
    if (const passwd* pw = ::getpwnam(pool.user.c_str())) {
      merged["HOME"] = pw->pw_dir;
      merged["USER"] = pw->pw_name;
      merged["LOGNAME"] = pw->pw_name;
      merged["SHELL"] = pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh";
    }
  }
  for (const auto& [name, value] : pool.env) merged[name] = value;
  merged["PREFORKD_POOL"] = pool.name;
  merged["PREFORKD_GENERATION"] = std::to_string(generation);
  if (!cwd.empty()) merged["PWD"] = cwd;
  std::vector<std::string> env;
  env.reserve(merged.size());
  for (auto& [name, value] : merged) env.push_back(name + "=" + value);
  return env;
}

// In the child: report why it cannot run ("E ERRNO STEP", the step as in
// describe_start_failure), then leave without running any of the supervisor's atexit
// handlers or destructors. No allocation: an exec'd child shares the supervisor's memory
// until execve (CLONE_VM).
[[noreturn]] void child_fail(int status_fd, char step, int err) {
  char line[20] = "E ";
  char digits[12];
  int n = 0;
  for (unsigned value = static_cast<unsigned>(err); n == 0 || value > 0; value /= 10)
    digits[n++] = static_cast<char>('0' + value % 10);
  int at = 2;
  while (n > 0) line[at++] = digits[--n];
  line[at++] = ' ';
  line[at++] = step;
  line[at++] = '\n';
  [[maybe_unused]] ssize_t sent = ::send(status_fd, line, static_cast<size_t>(at), MSG_NOSIGNAL);
  ::_exit(127);
}

// Unblocks every signal, after dropping the pending ones preforkd did not send. A new
// child is born with its signals blocked and in preforkd's process group until it
// leaves it: a signal to that group (Ctrl-Z in a terminal, `kill -USR2 -PGID`), or one
// sent to a spare while it waited, was meant for preforkd or for no one, not for the
// child this process has become. What preforkd sent (a stop right after the spawn) is
// kept, and delivered once unblocked.
void unblock_signals(pid_t supervisor) {
  sigset_t all;
  sigfillset(&all);
  timespec no_wait{0, 0};
  int kept[64];
  int kept_count = 0;
  siginfo_t info;
  for (int pending = 0; pending < 256; ++pending) {  // each standard signal once, some queued
    int signo = ::sigtimedwait(&all, &info, &no_wait);
    if (signo <= 0) break;  // EAGAIN: none left
    bool from_preforkd = info.si_code == SI_USER && info.si_pid == supervisor;
    if (from_preforkd && kept_count < 64) kept[kept_count++] = signo;
  }
  for (int i = 0; i < kept_count; ++i) ::kill(::getpid(), kept[i]);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace

void place_child(const SpawnPlan& plan, int cpu, pid_t supervisor, int status_fd) {
  // A forked child may have been made before a USR1 (a spare, or by a fork server): it
  // moves to the new log file while it is still root. Not an exec'd child: it never has
  // the log file, and shares the supervisor's memory until it execs.
  if (plan.function) follow_log_reopen();
  if (cpu >= 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    // Best effort: a CPU taken away since the config was read must not stop the child.
    ::sched_setaffinity(0, sizeof one, &one);
  }
  if (plan.credentials) {
    if (!switch_credentials(*plan.credentials)) child_fail(status_fd, 'u', errno);
    // The kernel clears the parent-death signal when the credentials change: set again.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != supervisor) ::_exit(1);
  }
  // As the pool's user: a directory that user may not enter is an error now, not a
  // child that fails at every relative path later.
  if (!plan.working_directory.empty() && ::chdir(plan.working_directory.c_str()) != 0)
    child_fail(status_fd, 'c', errno);
}

void enter_function_environment(const SpawnPlan& plan) {
  environ = const_cast<char**>(plan.env_pointers.data());
  // Whatever the forking process had not flushed is not this child's to print (each
  // child would print it again when it ends).
  if (__fpending(stdout) > 0) __fpurge(stdout);
}

[[noreturn]] void run_function(const SpawnPlan& plan, pid_t supervisor, ForkedChildContext& context) {
  unblock_signals(supervisor);
  int rc = 0;
  try {
    rc = plan.function(context);
  } catch (const std::exception& e) {
    spdlog::error("pool={} pid={} worker function threw: {}", plan.pool, ::getpid(), e.what());
    rc = 70;  // EX_SOFTWARE
  } catch (...) {
    // Not let out: std::terminate would end the child with ABRT and no word of which.
    spdlog::error("pool={} pid={} worker function threw something that is not a std::exception",
                  plan.pool, ::getpid());
    rc = 70;
  }
  // An exit status has 8 bits: a return of 256 would read as a clean 0.
  if (rc < 0 || rc > 255) rc = 255;
  // What the function printed with stdio and left in a buffer: _exit would drop it.
  // Looking at the buffers writes nothing, so a child that printed nothing pays nothing.
  if (__fpending(stdout) > 0) std::fflush(stdout);
  if (__fpending(stderr) > 0) std::fflush(stderr);
  // A clean end is announced, so that the replacement need not wait for the kernel to
  // tear this process down and for SIGCHLD; any other ends at the real exit, where
  // err_respawn_interval applies.
  if (rc == 0) context.done();
  // No log flush: configure_logging flushes every line as it is written. A flush here
  // cost each child a copy of the logger registry's pages (its mutex and shared_ptr
  // count live in memory shared with the supervisor until written).
  ::_exit(rc);
}

[[noreturn]] void start_child(const SpawnPlan& plan, int cpu, pid_t supervisor, int status_fd) {
  place_child(plan, cpu, supervisor, status_fd);
  if (plan.function) {
    enter_function_environment(plan);
    ForkedChildContext context(plan.pool, plan.generation, UniqueFd(status_fd));
    run_function(plan, supervisor, context);
  }
  unblock_signals(supervisor);
  char* const* argv = plan.argv_pointers.data();
  ::execve(argv[0], argv, plan.env_pointers.data());
  child_fail(status_fd, 'x', errno);
}

namespace {

[[noreturn]] void run_child(const SpawnPlan& plan, int cpu, pid_t supervisor, int status_fd,
                            std::span<const int> signals_to_reset,
                            std::span<const int> close_in_child) {
  prepare_child(supervisor, signals_to_reset, close_in_child);
  start_child(plan, cpu, supervisor, status_fd);
}

}  // namespace

void prepare_child(pid_t supervisor, std::span<const int> signals_to_reset,
                   std::span<const int> close_in_child) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The supervisor may have died before prctl took effect.
  if (::getppid() != supervisor) ::_exit(1);
  // Own process group: signals from the terminal reach only the supervisor, which
  // decides what each child gets; and a KILL after graceful_timeout can take the
  // child's own children with it.
  ::setpgid(0, 0);
  for (int signo : signals_to_reset) ::signal(signo, SIG_DFL);
  for (int fd : close_in_child) ::close(fd);
}

std::string resolve_working_directory(const PoolConfig& pool) {
  if (pool.working_directory.empty()) return {};
  char resolved[PATH_MAX];
  if (!::realpath(pool.working_directory.c_str(), resolved))
    throw std::runtime_error(syscall_error("realpath", pool.working_directory, errno));
  return resolved;
}

bool plan_still_fits(const SpawnPlan& plan, const PoolConfig& pool, unsigned generation) {
  return plan.generation == generation && plan.working_directory == resolve_working_directory(pool);
}

SpawnPlan plan_spawn(const PoolConfig& pool, unsigned generation, const SourceConfig* source) {
  static uint64_t last_id = 0;
  SpawnPlan plan;
  plan.id = ++last_id;
  plan.pool = pool.name;
  plan.generation = generation;
  if (pool.kind == PoolKind::function) {
    const WorkerFunction* function = find_worker_function(pool.function);
    if (!function)
      throw std::runtime_error("worker function '" + pool.function + "' is not registered");
    plan.function = *function;
  } else if (pool.kind == PoolKind::jobs) {
    if (!source) throw std::runtime_error("source '" + pool.jobs.source + "' is not configured");
    plan.function = [pool, source = *source](ChildContext& context) {
      return run_job_worker(static_cast<ForkedChildContext&>(context), pool, source);
    };
  } else {
    plan.argv = pool.command;
  }
  plan.via_fork_server = plan.function && pool.fork_server;
  plan.working_directory = resolve_working_directory(pool);
  std::vector<size_t> env_offsets;
  for (const auto& entry : child_environment(pool, generation, plan.working_directory)) {
    env_offsets.push_back(plan.env_block.size());
    plan.env_block.insert(plan.env_block.end(), entry.begin(), entry.end());
    plan.env_block.push_back('\0');
  }
  plan.credentials = resolve_credentials(pool.user, pool.group);
  for (auto& arg : plan.argv) plan.argv_pointers.push_back(arg.data());
  plan.argv_pointers.push_back(nullptr);
  for (size_t offset : env_offsets) plan.env_pointers.push_back(plan.env_block.data() + offset);
  plan.env_pointers.push_back(nullptr);
  return plan;
}

namespace {

struct ExecChild {
  const SpawnPlan* plan;
  pid_t supervisor;
  int status_fd;
  int supervisor_end;
  std::span<const int> signals_to_reset;
  int cpu;
};

int exec_child_main(void* arg) {
  auto* child = static_cast<ExecChild*>(arg);
  ::close(child->supervisor_end);  // the child's copy of the fd table
  run_child(*child->plan, child->cpu, child->supervisor, child->status_fd,
            child->signals_to_reset, {});
}

}  // namespace

SpawnedChild spawn_child(const SpawnPlan& plan, int cpu, std::span<const int> signals_to_reset,
                         std::span<const int> close_in_child) {
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0)
    throw std::runtime_error(syscall_error("socketpair", plan.pool, errno));
  UniqueFd parent_end(sockets[0]);
  UniqueFd child_end(sockets[1]);

  // Signals stay blocked across fork so none is delivered to the supervisor's asio
  // handler inside the child before the child resets its dispositions.
  sigset_t all, previous;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, &previous);
  pid_t supervisor = ::getpid();
  pid_t pid;
#if defined(__SANITIZE_ADDRESS__)
  // ASan cannot follow a child running on a stack of ours in our memory: fork there.
  constexpr bool use_clone_vm = false;
#else
  constexpr bool use_clone_vm = true;
#endif
  if (use_clone_vm && !plan.function) {
    // An exec'd child: CLONE_VM|CLONE_VFORK, as posix_spawn does, so the supervisor's
    // pages are neither copied nor write-protected for a child that execs at once; the
    // supervisor waits (microseconds) until the child has exec'd or failed.
    std::vector<char> stack(64 * 1024);
    ExecChild child{&plan, supervisor, child_end.get(), parent_end.get(), signals_to_reset, cpu};
    pid = ::clone(exec_child_main, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD,
                  &child);
  } else {
    pid = ::fork();
  }
  if (pid == 0) {
    parent_end.release();  // closed below via close_in_child semantics: not ours
    ::close(sockets[0]);
    run_child(plan, cpu, supervisor, child_end.release(), signals_to_reset, close_in_child);
  }
  int fork_errno = errno;
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) throw std::runtime_error(syscall_error("fork", plan.pool, fork_errno));
  return SpawnedChild{pid, std::move(parent_end), cpu};
}

}  // namespace preforkd
