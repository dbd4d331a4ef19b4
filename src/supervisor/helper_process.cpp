// Forking a helper process (see helper_process.hpp).
#include "supervisor/helper_process.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "util/log.hpp"

namespace preforkd {

pid_t fork_helper_process(const char* what) {
  sigset_t all, previous;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, &previous);
  pid_t supervisor = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != supervisor) ::_exit(1);
    return 0;
  }
  int fork_errno = errno;
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) throw std::runtime_error(syscall_error("fork", what, fork_errno));
  return pid;
}

}  // namespace preforkd
