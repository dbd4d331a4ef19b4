// Starting and stopping the measured processes (see processes.hpp).
#include "processes.hpp"

#include "events.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace bench {
namespace {

int run_counter = 0;

Launch make_launch(std::string name, std::vector<std::string> argv,
                   const std::vector<std::string>& extra_env, std::string log) {
  Launch launch{std::move(name), std::move(argv), {}, std::move(log)};
  for (char** e = environ; *e; ++e) launch.env.emplace_back(*e);
  for (const auto& e : extra_env) launch.env.push_back(e);
  return launch;
}

std::string preforkd_config(const Paths& paths, const Side& side, int workers,
                            const std::string& mode, int work_ms) {
  std::string file = paths.work_dir + "/preforkd-" + std::to_string(++run_counter) + ".yaml";
  std::ofstream out(file);
  // BENCH_LOG_LEVEL=info shows every spawn and exit in supervisor.log (--keep).
  const char* level = std::getenv("BENCH_LOG_LEVEL");
  out << "log: { level: " << (level ? level : "warn") << " }\n"
      << "pools:\n"
      << "  bench:\n";
  if (side.children == Children::in_process) out << "    function: bench\n";
  else out << "    command: [" << paths.bench_child << "]\n";
  out << "    workers: " << workers << "\n"
      << "    spawn_interval: 0s\n"
      << "    err_respawn_interval: 0s\n"
      << "    graceful_timeout: 5s\n"
      << "    env: { BENCH_FIFO: \"" << paths.fifo << "\", BENCH_MODE: " << mode
      << ", BENCH_WORK_MS: \"" << work_ms << "\" }\n";
  return file;
}

}  // namespace

// vfork: the bench's own fork (its page tables, its threads) is not part of what a
// cold start measures. Between vfork and exec the child makes system calls only.
std::unique_ptr<Process> spawn(const Launch& launch, long long* launched_ns) {
  std::vector<char*> envp, args;
  for (const auto& e : launch.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  for (const auto& a : launch.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const char* log = launch.log.c_str();
  sigset_t none;
  sigemptyset(&none);

  // fork+exec rather than posix_spawn: the measured process must get TERM if the bench
  // itself dies (PR_SET_PDEATHSIG), so nothing it started outlives it.
  pid_t parent = ::getpid();
  if (launched_ns) *launched_ns = now_ns();
  pid_t pid = ::vfork();
  if (pid < 0) throw std::runtime_error("vfork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    int out = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return std::make_unique<Process>(pid, launch.name, launch.log);
}

std::string Side::label() const {
  return std::string(supervisor == Supervisor::preforkd ? "preforkd" : "Parallel::Prefork") +
         (children == Children::in_process ? " (in-process)" : " (exec)");
}

Launch prepare_supervisor(const Paths& paths, const Side& side, int workers,
                          const std::string& mode, int work_ms) {
  std::string log = paths.work_dir + "/supervisor.log";
  if (side.supervisor == Supervisor::preforkd) {
    std::string config = preforkd_config(paths, side, workers, mode, work_ms);
    const std::string& binary =
        side.children == Children::in_process ? paths.library_pool : paths.preforkd;
    return make_launch("preforkd", {binary, "-c", config}, {}, log);
  }
  std::vector<std::string> argv = {"/usr/bin/perl", paths.peer_script, std::to_string(workers)};
  if (side.children == Children::exec) argv.push_back(paths.bench_child);
  return make_launch("Parallel::Prefork", argv,
               {"BENCH_FIFO=" + paths.fifo, "BENCH_MODE=" + mode,
                "BENCH_WORK_MS=" + std::to_string(work_ms)},
               log);
}

Launch prepare_bare(const Paths& paths, bool exec, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {paths.bare_fork};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(exec ? paths.bench_child : "-");
  return make_launch("bare_fork", argv, {"BENCH_FIFO=" + paths.fifo, "BENCH_MODE=exit"},
                     paths.work_dir + "/bare.log");
}

std::unique_ptr<Process> start_supervisor(const Paths& paths, const Side& side, int workers,
                                          const std::string& mode, int work_ms) {
  return spawn(prepare_supervisor(paths, side, workers, mode, work_ms));
}

std::unique_ptr<Process> start_bare(const Paths& paths, bool exec,
                                    const std::vector<std::string>& args) {
  return spawn(prepare_bare(paths, exec, args));
}

void Process::signal(int signo) const {
  if (running_) ::kill(pid_, signo);
}

bool Process::wait_exit(std::chrono::milliseconds timeout) {
  if (!running_) return true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      running_ = false;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::fprintf(stderr, "bench: %s (pid %d) still running after %lld ms: KILL\n", name_.c_str(),
               pid_, static_cast<long long>(timeout.count()));
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  running_ = false;
  return false;
}

bool Process::stop(std::chrono::milliseconds grace) {
  if (!running_) return true;
  ::kill(pid_, SIGTERM);
  return wait_exit(grace);
}

Process::~Process() {
  stop();
  reap_leftovers();
}

void reap_leftovers() {
  pid_t self = ::getpid();
  int status = 0;
  while (::waitpid(-1, &status, WNOHANG) > 0) {
  }
  DIR* proc = ::opendir("/proc");
  if (!proc) return;
  std::vector<pid_t> ours;
  while (dirent* entry = ::readdir(proc)) {
    pid_t pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(entry->d_name) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(text.c_str() + paren + 1, " %c %d", &state, &ppid) == 2 && ppid == self)
      ours.push_back(pid);
  }
  ::closedir(proc);
  for (pid_t pid : ours) {
    std::fprintf(stderr, "bench: leftover child process %d: KILL\n", pid);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
}

ProcStat read_proc_stat(pid_t pid) {
  ProcStat result;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream fields(text.substr(paren + 2));
    std::vector<std::string> f;
    for (std::string s; fields >> s;) f.push_back(s);
    // After "pid (comm)": field 3 is f[0]; utime is field 14, stime 15.
    if (f.size() > 12)
      result.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) /
                           static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  std::ifstream schedstat("/proc/" + std::to_string(pid) + "/schedstat");
  long long run_ns = 0;
  if (schedstat >> run_ns) result.run_seconds = static_cast<double>(run_ns) / 1e9;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) result.rss_kib = std::atol(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) result.hwm_kib = std::atol(line.c_str() + 6);
  }
  return result;
}

}  // namespace bench
