// A fork server: a small process, forked from the supervisor, that forks the children of
// function and jobs pools on its behalf.
//
// Why: every fork write-protects the forking process's heap and stack, and the
// supervisor then took a copy-on-write fault (and, on a VM, a TLB-shootdown IPI) on each
// page it wrote before the next fork: about 18 pages per respawn, more time than the
// fork itself. The server writes to one or two pages between forks, and the supervisor
// no longer forks at all while its plans stay the same.
//
// The children are created with CLONE_PARENT, so they are the supervisor's own children
// exactly as before: it reaps them with waitpid, signals them, and PDEATHSIG fires when
// the supervisor dies. The server only holds a snapshot of the spawn plans it was forked
// with; a plan made later (a reload, a repointed capistrano `current`) gets a new server.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "supervisor/spawn.hpp"
#include "util/unique_fd.hpp"

namespace preforkd {

// The server stopped answering (it died, or was killed): spawn directly instead.
struct ForkServerGone : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ForkServer {
 public:
  // Forks the server now. It serves `plans` as they are at this moment (its own copy of
  // the supervisor's memory). `close_in_server`: supervisor fds that neither the server
  // nor its children may keep (other children's status sockets).
  ForkServer(std::vector<SpawnPlan*> plans, std::span<const int> signals_to_reset,
             std::span<const int> close_in_server);
  // Closes the request socket (the server exits on EOF), kills it and reaps it.
  ~ForkServer();
  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;

  pid_t pid() const { return pid_; }
  bool serves(const SpawnPlan& plan) const;

  // A new child running `plan` (pinned to plan.cpu when >= 0). Throws ForkServerGone
  // when the server does not answer, std::runtime_error when the fork failed there.
  SpawnedChild spawn(const SpawnPlan& plan);

  // False when this glibc keeps the thread id where it cannot be found (see the .cpp):
  // then children are forked by the supervisor itself.
  static bool supported();

  // The server's process name (comm), as ps and top show it.
  static constexpr const char* process_name = "preforkd-fork";

 private:
  [[noreturn]] void serve(int requests, pid_t supervisor);

  // The plans in the server's copy of memory: the supervisor's may be gone by now.
  std::vector<SpawnPlan*> plans_;
  std::vector<uint64_t> plan_ids_;
  std::vector<int> signals_to_reset_;
  char child_name_[17] = {};  // the supervisor's comm, for the children
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd requests_;
};

}  // namespace preforkd
