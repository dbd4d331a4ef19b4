// Forking one child: everything that needs the heap or /etc lookups is prepared in
// the supervisor first (SpawnPlan), so the child between fork and exec only makes
// system calls: the PDEATHSIG/process-group/signal reset, chdir, user switch, exec.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "preforkd/config.hpp"
#include "preforkd/worker_function.hpp"
#include "util/credentials.hpp"
#include "util/unique_fd.hpp"

namespace preforkd {

class ForkedChildContext;

struct SpawnPlan {
  SpawnPlan() = default;
  // Move-only: argv_pointers/env_pointers point into argv/env_block, which a move of
  // the vectors leaves where they are, and a copy would not.
  SpawnPlan(SpawnPlan&&) = default;
  SpawnPlan& operator=(SpawnPlan&&) = default;
  SpawnPlan(const SpawnPlan&) = delete;
  SpawnPlan& operator=(const SpawnPlan&) = delete;

  std::string pool;
  unsigned generation = 0;
  // Unique in the supervisor's life: what a fork server is asked for (fork_server.hpp).
  uint64_t id = 0;
  WorkerFunction function;                   // empty: exec argv
  bool via_fork_server = false;              // a function the fork server may fork
  std::vector<std::string> argv;
  // The environment, "NAME=value\0" one after the other: the page or two a child reads
  // through getenv, rather than one allocation per variable scattered over the heap.
  std::vector<char> env_block;
  std::string working_directory;             // physical path (symlinks resolved); may be empty
  std::optional<Credentials> credentials;    // user:/group: to switch to (root only)
  // execve's argv and envp, built once per plan rather than at every spawn.
  std::vector<char*> argv_pointers;
  std::vector<char*> env_pointers;
};

// Resolves the working_directory symlink now (capistrano `current`), the user and
// the environment. Throws std::runtime_error with an operator-facing message.
// `source` is the jobs pool's source (null for other pools).
SpawnPlan plan_spawn(const PoolConfig& pool, unsigned generation, const SourceConfig* source);

// working_directory with its symlinks resolved now ("" when the pool has none).
std::string resolve_working_directory(const PoolConfig& pool);

// A plan may serve the next spawn too while the generation is the same and the
// working directory still resolves to the same place (a capistrano `current` that was
// repointed gets a new plan at the next spawn, HUP or not). Users and groups are looked
// up again at a reload.
bool plan_still_fits(const SpawnPlan& plan, const PoolConfig& pool, unsigned generation);

struct SpawnedChild {
  pid_t pid = -1;
  UniqueFd status;  // supervisor's end of the status socket
  int cpu = -1;     // pinned there (-1: not pinned)
};

// Children forked at one time, in the order asked for less those that failed, and why
// there are fewer than asked ("" when there are not). Those that were made run,
// whatever failed before or after them.
struct SpawnedChildren {
  std::vector<SpawnedChild> children;
  std::string error;
};

// Forks a child pinned to `cpu` (-1: not pinned). `signals_to_reset` are the signals
// the supervisor handles (they go back to SIG_DFL in the child); `close_in_child` are
// supervisor fds a forked function child must not keep (other children's status
// sockets). Throws std::runtime_error when fork or socketpair fails.
SpawnedChild spawn_child(const SpawnPlan& plan, int cpu, std::span<const int> signals_to_reset,
                         std::span<const int> close_in_child);

// What a new child does right after it was forked, by spawn_child or by a fork server,
// in two steps, so that a fork server's spare can take the first before it is needed.
// prepare_child: PDEATHSIG (it exits at once if `supervisor` is no longer its parent),
// its own process group, `signals_to_reset` back to SIG_DFL, `close_in_child` closed.
void prepare_child(pid_t supervisor, std::span<const int> signals_to_reset,
                   std::span<const int> close_in_child);
// start_child: place_child, then the function or the exec. It is the sum of the steps
// below, which a spare takes apart: it enters the function's environment and makes its
// ChildContext before it waits, and is placed and runs the function once it is needed.
[[noreturn]] void start_child(const SpawnPlan& plan, int cpu, pid_t supervisor, int status_fd);
// Pinned to `cpu` (-1: not pinned), then the user, then the working directory (entered as
// that user); on failure the reason goes to `status_fd` and the process exits.
void place_child(const SpawnPlan& plan, int cpu, pid_t supervisor, int status_fd);
// A function child's environment (environ) is the plan's.
void enter_function_environment(const SpawnPlan& plan);
// Unblocks signals (dropping those pending that `supervisor` did not send: they were
// meant for its process group or for a waiting spare), runs the plan's function and
// exits with what it returned.
[[noreturn]] void run_function(const SpawnPlan& plan, pid_t supervisor, ForkedChildContext& context);

}  // namespace preforkd
