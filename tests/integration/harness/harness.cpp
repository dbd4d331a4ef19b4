// Implementation of the integration-test harness (see harness.hpp).
#include "harness/harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace harness {
namespace {

std::vector<char*> c_strings(const std::vector<std::string>& items) {
  std::vector<char*> out;
  for (const auto& item : items) out.push_back(const_cast<char*>(item.c_str()));
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  for (const auto& entry : extra) {
    auto name = entry.substr(0, entry.find('=') + 1);
    std::erase_if(env, [&](const std::string& e) { return e.rfind(name, 0) == 0; });
    env.push_back(entry);
  }
  return env;
}

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
            int in_fd, int out_fd, int err_fd) {
  auto args = c_strings(argv);
  auto env_strings = environment_with(extra_env);
  auto env = c_strings(env_strings);
  pid_t test_pid = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    // A test that crashes never runs ~Process: the daemon must not outlive it (its own
    // children then follow, by their parent-death signal). Tests spawn from the main
    // thread only, which lives as long as the test process.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != test_pid) ::_exit(127);
    if (in_fd >= 0) ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execve(args[0], args.data(), env.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  if (pid < 0) throw std::runtime_error("fork failed");
  return pid;
}

}  // namespace

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "preforkd-test-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool wait_until(const std::function<bool()>& condition, Millis timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

RunResult run(const std::vector<std::string>& argv, const std::string& input,
              const std::vector<std::string>& extra_env, Millis timeout) {
  TempDir dir;
  write_file(dir.file("in"), input);
  int in = ::open(dir.file("in").c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open(dir.file("out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  int err = ::open(dir.file("err").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  pid_t pid = spawn(argv, extra_env, in, out, err);
  ::close(in);
  ::close(out);
  ::close(err);
  int status = 0;
  bool exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  RunResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(dir.file("out"));
  result.err = read_file(dir.file("err"));
  return result;
}

Process::Process(const std::vector<std::string>& argv, std::string output_path,
                 const std::vector<std::string>& extra_env)
    : output_path_(std::move(output_path)) {
  int out = ::open(output_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_ = spawn(argv, extra_env, null_in, out, out);
  ::close(out);
  ::close(null_in);
}

Process::~Process() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

void Process::signal(int signo) const { ::kill(pid_, signo); }

bool Process::running() {
  if (status_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
  return !status_;
}

std::optional<int> Process::wait_exit(Millis timeout) {
  wait_until([&] { return !running(); }, timeout);
  return status_;
}

std::string Process::output() const { return read_file(output_path_); }

size_t Process::count_output(const std::string& needle) const {
  std::string text = output();
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++count;
  return count;
}

bool Process::wait_output(const std::string& needle, Millis timeout, size_t count) const {
  return wait_until([&] { return count_output(needle) >= count; }, timeout);
}

int exit_code(std::optional<int> wait_status) {
  return wait_status && WIFEXITED(*wait_status) ? WEXITSTATUS(*wait_status) : -1;
}

std::string preforkd_bin() { return PREFORKD_BIN; }
std::string test_child_bin() { return TEST_CHILD_BIN; }
std::string preforkctl_bin() { return PREFORKCTL_BIN; }
std::string test_handler_bin() { return TEST_HANDLER_BIN; }
std::string test_inprocess_bin() { return TEST_INPROCESS_BIN; }

Daemon::Daemon(const std::string& config_path, const std::vector<std::string>& extra_env,
               const std::vector<std::string>& extra_args, const std::string& binary)
    : Process(
          [&] {
            std::vector<std::string> argv{binary.empty() ? preforkd_bin() : binary, "-c",
                                          config_path};
            argv.insert(argv.end(), extra_args.begin(), extra_args.end());
            return argv;
          }(),
          // Resolved now: a config under a `current` symlink that a test repoints must
          // not move the daemon's output to the other release.
          std::filesystem::weakly_canonical(config_path).string() + ".log", extra_env) {}

namespace {
// The comms preforkd's fork server and its spares give themselves
// (ForkServer::process_name, ForkServer::spare_name).
constexpr const char* fork_server_name = "preforkd-fork";
constexpr const char* spare_name = "preforkd-spare";

// When the process started (clock ticks since boot), then its pid: a spare is younger
// than its server.
std::pair<unsigned long long, pid_t> birth(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return {0, pid};  // gone meanwhile
  std::istringstream fields(stat.substr(close + 2));  // past "pid (comm) "
  std::string field;
  for (int i = 3; i < 22 && fields >> field; ++i) {
  }
  unsigned long long start = 0;
  fields >> start;
  return {start, pid};
}
}  // namespace

// A pool's child leads its own process group, and so does a spare; the fork server
// stays in preforkd's. Names tell them apart: the server names itself just after its
// fork, and each process it clones has the server's name until it renames itself (a
// spare's name, or preforkd's for a child).
bool leads_own_group(pid_t pid) { return ::getpgid(pid) == pid; }

std::vector<pid_t> Daemon::children() const {
  std::vector<pid_t> pids;
  for (pid_t pid : children_of(pid())) {
    std::string name = process_name(pid);
    if (leads_own_group(pid) && name != fork_server_name && name != spare_name) pids.push_back(pid);
  }
  return pids;
}

// Of the processes with the server's name, the oldest is the server; the others are
// spares not yet renamed.
std::vector<pid_t> Daemon::server_and_spares(bool want_server) const {
  std::vector<pid_t> named_server, spares;
  for (pid_t pid : children_of(pid())) {
    std::string name = process_name(pid);
    if (name == spare_name) spares.push_back(pid);
    if (name == fork_server_name) named_server.push_back(pid);
  }
  std::sort(named_server.begin(), named_server.end(),
            [](pid_t a, pid_t b) { return birth(a) < birth(b); });
  if (want_server) return {named_server.begin(), named_server.begin() + (named_server.empty() ? 0 : 1)};
  if (!named_server.empty()) spares.insert(spares.end(), named_server.begin() + 1, named_server.end());
  return spares;
}

std::vector<pid_t> Daemon::fork_servers() const { return server_and_spares(true); }
std::vector<pid_t> Daemon::spares() const { return server_and_spares(false); }

std::string process_name(pid_t pid) {
  std::string name = read_file("/proc/" + std::to_string(pid) + "/comm");
  while (!name.empty() && name.back() == '\n') name.pop_back();
  return name;
}

bool Daemon::wait_children(size_t count, Millis timeout) const {
  return wait_until([&] { return children().size() == count; }, timeout);
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> pids;
  std::ifstream in("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                   "/children");
  for (pid_t pid; in >> pid;) {
    if (!is_zombie(pid)) pids.push_back(pid);
  }
  return pids;
}

char process_state(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '\0';
}

bool is_zombie(pid_t pid) { return process_state(pid) == 'Z'; }

bool pid_alive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  return !is_zombie(pid);
}

std::string cpus_allowed(pid_t pid) {
  std::istringstream status(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Cpus_allowed_list:", 0) == 0) return line.substr(line.find('\t') + 1);
  return "?";
}

std::vector<int> usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  ::sched_getaffinity(0, sizeof set, &set);
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

std::vector<ChildEvent> read_events(const std::string& path) {
  std::vector<ChildEvent> events;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    ChildEvent event;
    fields >> event.kind >> event.pid >> event.arg1 >> event.arg2;
    events.push_back(event);
  }
  return events;
}

size_t count_events(const std::string& path, const std::string& kind) {
  size_t count = 0;
  for (const auto& event : read_events(path)) count += event.kind == kind;
  return count;
}

std::string yaml_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
  return out + "]";
}

std::string child_pool(const std::string& name, const std::vector<std::string>& args, int workers,
                       const std::string& extra) {
  std::vector<std::string> argv{test_child_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return "  " + name + ":\n    command: " + yaml_list(argv) + "\n    workers: " +
         std::to_string(workers) + "\n" + extra;
}

}  // namespace harness
