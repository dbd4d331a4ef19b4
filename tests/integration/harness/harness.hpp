// What the integration tests share: temporary directories, running the real binaries,
// waiting for conditions with deadlines (never sleeping to synchronise), and reading
// the process table and the test child's event log.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace harness {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);  // "" when missing

// Polls `condition` until it holds or `timeout` passes; true when it held.
bool wait_until(const std::function<bool()>& condition, Millis timeout = 15s);

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};
// Runs to completion (killed after `timeout`), capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv, const std::string& input = "",
              const std::vector<std::string>& extra_env = {}, Millis timeout = 60s);

// A process in the background, stdout+stderr appended to `output_path`.
class Process {
 public:
  Process(const std::vector<std::string>& argv, std::string output_path,
          const std::vector<std::string>& extra_env = {});
  virtual ~Process();  // KILLs and reaps it if it still runs
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signo) const;
  bool running();
  // The wait status once it exited within `timeout`.
  std::optional<int> wait_exit(Millis timeout = 15s);
  std::string output() const;
  bool wait_output(const std::string& needle, Millis timeout = 15s, size_t count = 1) const;
  size_t count_output(const std::string& needle) const;

 private:
  pid_t pid_ = -1;
  std::string output_path_;
  std::optional<int> status_;
};

// The real preforkd on a config file.
class Daemon : public Process {
 public:
  // `binary`: another preforkd-compatible program (one with registered handlers).
  explicit Daemon(const std::string& config_path, const std::vector<std::string>& extra_env = {},
                  const std::vector<std::string>& extra_args = {},
                  const std::string& binary = "");
  // The pools' children: every child process but the fork server and its spares.
  std::vector<pid_t> children() const;
  bool wait_children(size_t count, Millis timeout = 15s) const;
  // The fork server among the child processes (function and jobs pools have one).
  std::vector<pid_t> fork_servers() const;
  // The server's spares: children forked ahead, not yet a pool's (ForkServer).
  std::vector<pid_t> spares() const;

 private:
  std::vector<pid_t> server_and_spares(bool want_server) const;
};

// The exit code of a wait status; -1 when none or killed by a signal.
int exit_code(std::optional<int> wait_status);

std::string preforkd_bin();
std::string test_child_bin();
std::string preforkctl_bin();
std::string test_handler_bin();
std::string test_inprocess_bin();

std::vector<pid_t> children_of(pid_t parent);
// The process name (comm) of a pid, "" when it is gone.
std::string process_name(pid_t pid);
// The state letter of /proc/PID/stat (R, S, T, Z, ...); '\0' when it is gone.
char process_state(pid_t pid);
bool is_zombie(pid_t pid);
bool pid_alive(pid_t pid);  // exists and is not a zombie
// "Cpus_allowed_list" of /proc/PID/status: "0-1", "1", ...; "?" when it is gone.
std::string cpus_allowed(pid_t pid);
// The CPUs this process may run on.
std::vector<int> usable_cpus();

// The lines test_child appends to $TEST_CHILD_EVENTS.
struct ChildEvent {
  std::string kind;  // start, done, stop, usr2
  pid_t pid = 0;
  std::string arg1;  // start: cwd; stop: signal name
  std::string arg2;  // start: TEST_TAG
};
std::vector<ChildEvent> read_events(const std::string& path);
size_t count_events(const std::string& path, const std::string& kind);

// A YAML string for a list: ["a", "b"].
std::string yaml_list(const std::vector<std::string>& items);

// A temporary directory with a config file path and the events file test_child reports
// to (through `env`, given to the Daemon).
struct ChildFixture {
  TempDir dir;
  std::string events = dir.file("events");
  std::string config = dir.file("preforkd.yaml");
  std::vector<std::string> env{"TEST_CHILD_EVENTS=" + events};
};

// The YAML of a command pool running test_child with `args`; `extra` are more lines of
// the pool, indented by four spaces.
std::string child_pool(const std::string& name, const std::vector<std::string>& args, int workers,
                       const std::string& extra = "");

}  // namespace harness
