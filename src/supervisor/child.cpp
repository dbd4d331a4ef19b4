// Human-readable exit statuses for the log.
#include "supervisor/child.hpp"

#include <sys/wait.h>

#include <fmt/format.h>

namespace preforkd {

std::string describe_exit(int wait_status) {
  if (WIFEXITED(wait_status)) return fmt::format("exit status {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    int signo = WTERMSIG(wait_status);
    return fmt::format("killed by signal {} ({}){}", signo, signal_name(signo),
                       WCOREDUMP(wait_status) ? ", core dumped" : "");
  }
  return fmt::format("wait status {:#x}", wait_status);
}

}  // namespace preforkd
