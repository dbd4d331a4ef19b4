#include "common/processes.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/program.hpp"
#include "common/timing.hpp"

namespace bench {

std::vector<pid_t> live_children;
int exit_poll_ms = 2;

void forget(pid_t pid) {
  live_children.erase(std::remove(live_children.begin(), live_children.end(), pid), live_children.end());
}

bool is_live(pid_t pid) { return std::find(live_children.begin(), live_children.end(), pid) != live_children.end(); }

bool reap_if_exited(pid_t pid) {
  if (!is_live(pid) || ::waitpid(pid, nullptr, WNOHANG) != pid) return false;
  forget(pid);
  return true;
}

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env_extra,
            const std::string& stdin_path, const std::string& stdout_path,
            const std::string& stderr_path, const std::string& cwd, const SpawnAs& as) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) die("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    auto redirect = [](const std::string& path, int fd, int flags) {
      int f = ::open(path.c_str(), flags, 0644);
      if (f < 0) ::_exit(126);
      ::dup2(f, fd);
      ::close(f);
    };
    redirect(stdin_path.empty() ? "/dev/null" : stdin_path, 0, O_RDONLY);
    redirect(stdout_path.empty() ? "/dev/null" : stdout_path, 1, O_WRONLY | O_CREAT | O_APPEND);
    redirect(stderr_path.empty() ? "/dev/null" : stderr_path, 2, O_WRONLY | O_CREAT | O_APPEND);
    if (as.drop && (::setgroups(0, nullptr) != 0 || ::setgid(as.gid) != 0 || ::setuid(as.uid) != 0)) ::_exit(126);
    // After setuid, which clears the parent-death signal; a parent that died before it
    // was set is caught by the getppid() check.
    ::prctl(PR_SET_PDEATHSIG, as.death_signal);
    if (::getppid() != parent) ::_exit(1);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    for (const auto& e : env_extra) ::putenv(const_cast<char*>(e.c_str()));
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  live_children.push_back(pid);
  return pid;
}

bool wait_for(pid_t pid, double deadline_s, int* status) {
  long long until = now_ns() + static_cast<long long>(deadline_s * 1e9);
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      forget(pid);
      if (status) *status = st;
      return true;
    }
    if (r < 0 && errno != EINTR) {
      forget(pid);
      return true;
    }
    if (now_ns() >= until) return false;
    sleep_ms(exit_poll_ms);
  }
}

bool exited_ok(pid_t pid, double deadline_s) {
  int status = 0;
  if (!wait_for(pid, deadline_s, &status)) {
    stop_process(pid, SIGKILL, 5);
    return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void stop_process(pid_t pid, int signo, double grace_s) {
  if (!is_live(pid)) return;
  ::kill(pid, signo);
  if (!wait_for(pid, grace_s, nullptr)) {
    std::fprintf(stderr, "%s: pid %d still running %.0fs after signal %d: KILL\n", program_name().c_str(), pid,
                 grace_s, signo);
    ::kill(pid, SIGKILL);
    wait_for(pid, 10, nullptr);
  }
}

bool run_quiet(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               const std::string& stdin_path, const std::string& out, const std::string& err,
               double deadline_s, const SpawnAs& as) {
  return exited_ok(spawn(argv, env, stdin_path, out, err, "", as), deadline_s);
}

void kill_leftovers() {
  for (pid_t pid : live_children) ::kill(pid, SIGKILL);
  for (pid_t pid : live_children) ::waitpid(pid, nullptr, 0);
  live_children.clear();
}

namespace {
void on_signal(int) {
  kill_leftovers();
  ::_exit(130);
}
}  // namespace

void install_signal_handlers() {
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  ::signal(SIGHUP, on_signal);
  ::signal(SIGPIPE, SIG_IGN);
}

}  // namespace bench
