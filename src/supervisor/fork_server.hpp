// A fork server: a small process, forked from the supervisor, that forks the children of
// function and jobs pools on its behalf.
//
// Why: every fork write-protects the forking process's heap and stack, and the
// supervisor then took a copy-on-write fault (and, on a VM, a TLB-shootdown IPI) on each
// page it wrote before the next fork: about 18 pages per respawn, more time than the
// fork itself. The server writes to one or two pages between forks, and the supervisor
// no longer forks at all while its plans stay the same.
//
// Spares: after each spawn of a plan's children the supervisor asks the server for the
// next one ahead of time, a spare (named preforkd-spare), born holding its status socket. A
// respawn is then four bytes (the CPU) from the supervisor on that socket, straight to
// the spare; the fork of the next spare overlaps the running children instead of
// delaying the new one. A spare holds no work: it exits when its socket closes and is
// killed and reaped with its server (a reload, a stop).
//
// Children and spares are created with CLONE_PARENT, so they are the supervisor's own
// children exactly as before: it reaps them with waitpid, signals them, and PDEATHSIG
// fires when the supervisor dies. The server only holds a snapshot of the spawn plans it
// was forked with; a plan made later (a reload, a repointed capistrano `current`) gets a
// new server.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "supervisor/fork_server_protocol.hpp"
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
  // Lets the server finish and exit, then kills and reaps it and its spares.
  ~ForkServer();
  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;

  pid_t pid() const { return pid_; }
  bool serves(const SpawnPlan& plan) const;

  // New children running `plan`, one per entry of `cpus` (where to pin it, -1:
  // nowhere), appended to `forked`: the plan's spare first when it has one, the rest
  // forked by the server in batches. A failed fork sets forked.error: the rest of its
  // batch is still forked and kept, no further batch is asked for. Throws
  // ForkServerGone when the server does not answer, after appending every child it
  // answered for (a silent server is killed first, so that none runs unknown).
  void spawn(const SpawnPlan& plan, std::span<const int> cpus, SpawnedChildren& forked);

  // After a USR1 reopened the log file: the server and its spares hold the file they
  // were forked with, logrotate's old one (deleted, its space never given back). The
  // server is told to open it afresh, and each ready spare is retired and asked for
  // again, so that the new one holds the new file.
  void move_to_reopened_log();

  // True (and forgotten) when `pid`, just reaped by the supervisor, was a spare.
  bool forget_spare(pid_t pid);
  // The supervisor's descriptors of this server and its spares, which a child the
  // supervisor forks itself must not keep.
  void append_fds(std::vector<int>& fds) const;

  // False when this glibc keeps the thread id where it cannot be found (see
  // fork_server_process.cpp): then children are forked by the supervisor itself.
  static bool supported();

  // The server's process name (comm), as ps and top show it.
  static constexpr const char* process_name = "preforkd-fork";
  // A spare's name until it becomes a child (then it takes the supervisor's).
  static constexpr const char* spare_name = "preforkd-spare";

 private:
  struct Spare {
    uint64_t plan_id;
    pid_t pid;        // 0 while the server is forking it
    UniqueFd status;  // the supervisor's end of its status socket; the Go goes here
  };

  // Supervisor side.
  // The plan's ready spare, or end().
  std::vector<Spare>::iterator spare_of(uint64_t plan_id);
  // Whether the plan's spare is being forked (asked for, its reply not read yet).
  bool spare_asked(uint64_t plan_id) const;
  // Sends a request with the new process's end of its status socket. Throws ForkServerGone.
  void send_request(const fork_server_protocol::Request& request, UniqueFd status_end);
  // Asks the server to fork the plan's next spare (once: not while one is held or coming).
  void ask_for_spare(const SpawnPlan& plan);
  // Up to protocol::max_batch children in one request message; see spawn.
  void fork_batch(const SpawnPlan& plan, std::span<const int> cpus, SpawnedChildren& forked);
  // Kills the server and waits (briefly) until it is gone: it answers nothing more.
  void stop_now();
  // Ends a spare (its socket closed, then killed and reaped while it is still alive).
  void retire(Spare& spare);
  // Reads replies until the child's (`child`) or until the plan's spare has come; spares
  // that arrive meanwhile are kept. Throws ForkServerGone on silence.
  fork_server_protocol::Reply wait_for_reply(bool child, uint64_t plan_id);
  void keep_replies_that_came();  // without waiting
  void take_spare_reply(const fork_server_protocol::Reply& reply);

  // Server side (in the server process only).
  [[noreturn]] void serve(int requests, pid_t supervisor);
  pid_t clone_child();  // 0 in the child, which keeps none of the server's descriptors
  // What a spare does: waits for its Go (or EOF) on its status socket.
  [[noreturn]] void wait_as_spare(const SpawnPlan& plan, int status_fd);
  [[noreturn]] void run_as_child(const SpawnPlan& plan, int cpu, int status_fd);

  // The plans in the server's copy of memory: the supervisor's may be gone by now.
  std::vector<SpawnPlan*> plans_;
  std::vector<uint64_t> plan_ids_;
  std::vector<int> signals_to_reset_;
  char child_name_[17] = {};  // the supervisor's comm, for the children
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd requests_;
  // Ready and coming, in the order they were asked for (the server's replies come so).
  std::vector<Spare> spares_;
  bool spares_work_ = true;  // false after a spare could not be made

  // The server's own state.
  int requests_fd_ = -1;
  pid_t supervisor_ = -1;
  void* robust_head_ = nullptr;
  size_t robust_length_ = 0;
};

}  // namespace preforkd
