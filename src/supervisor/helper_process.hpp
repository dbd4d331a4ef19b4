// Forking one of the supervisor's helper processes (the fork server, a reload's source
// check): a copy of the supervisor that must never run its signal handlers and must not
// outlive it.
#pragma once

#include <sys/types.h>

namespace preforkd {

// Forks with every signal blocked, in both processes while fork runs and in the helper
// for good (SIGKILL still ends it); the helper dies with the supervisor
// (PR_SET_PDEATHSIG) and exits at once if the supervisor is already gone. Returns 0 in
// the helper and its pid in the supervisor; throws, naming `what`, when fork fails.
pid_t fork_helper_process(const char* what);

}  // namespace preforkd
