// Running a check in a child switched to a pool's user (see run_as.hpp).
#include "util/run_as.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace preforkd {

std::string run_as(const Credentials& credentials, const std::function<std::string()>& task) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  pid_t pid = ::fork();
  if (pid < 0) {
    int error = errno;
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return std::string("fork: ") + std::strerror(error);
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::close(pipe_fds[0]);
    std::string said;
    if (switch_credentials(credentials)) {
      try {
        said = task();
      } catch (const std::exception& e) {
        said = e.what();
      }
    } else {
      said = std::string("cannot switch to the pool's user: ") + std::strerror(errno);
    }
    for (size_t done = 0; done < said.size();) {
      ssize_t n = ::write(pipe_fds[1], said.data() + done, said.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string said;
  char buffer[512];
  for (;;) {
    ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    said.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (said.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    said = "the check as the pool's user ended abnormally";
  return said;
}

}  // namespace preforkd
