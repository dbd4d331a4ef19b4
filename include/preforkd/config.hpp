// The configuration as plain data: what the YAML file says, validated, with every
// relative path already resolved against the config file's directory.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "preforkd/job_source.hpp"

namespace preforkd {

using Duration = std::chrono::milliseconds;

enum class LogFormat { text, json };

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  LogFormat format = LogFormat::text;
  std::string file;            // empty: stderr (journald, multilog)
};

enum class PoolKind {
  command,   // fork+exec of `command`, kept at `workers` copies
  function,  // a registered C++ function run in a forked child
  jobs,      // forked children that fetch jobs from `source` and run `handler`
};

enum class HandlerKind {
  exec,        // fork+exec of argv per job, payload on stdin
  persistent,  // one long-lived process per worker child, JSON lines
  in_process,  // a C++ function registered for the job's queue
};

struct HandlerConfig {
  HandlerKind kind = HandlerKind::exec;
  std::vector<std::string> argv;  // exec, persistent; argv[0] resolved to a path
};

enum class Backoff { exponential, fixed };

struct RetryConfig {
  int max_attempts = 3;
  Backoff backoff = Backoff::exponential;
  Duration base{std::chrono::seconds(2)};
  Duration max{std::chrono::hours(1)};
};

// The jobs half of a pool (PoolKind::jobs).
struct JobsConfig {
  std::string source;               // a key of Config::sources
  std::vector<std::string> queues;  // strict priority: the first wins
  HandlerConfig handler;
  int max_requests_per_child = 0;   // 0: no limit
  int max_requests_jitter = 0;
  Duration timeout{0};              // per job; 0: none
  Duration timeout_grace{std::chrono::seconds(5)};  // TERM -> KILL of a handler
  RetryConfig retry;
  // Of an exec or persistent handler's output (stdout and stderr), what is logged per
  // job; the rest is counted, and said in one line. 0: no limit.
  size_t max_output_logged = 1 << 20;
};

struct PoolConfig {
  std::string name;
  PoolKind kind = PoolKind::command;
  std::vector<std::string> command;  // PoolKind::command; command[0] resolved to a path
  std::string function;              // PoolKind::function: registered name

  int workers = 1;
  std::map<std::string, std::string> env;
  std::string working_directory;  // as written (absolute); symlinks resolved at spawn
  std::string user;               // empty: keep the supervisor's
  std::string group;

  Duration spawn_interval{0};
  Duration err_respawn_interval{std::chrono::seconds(1)};
  Duration err_respawn_max{std::chrono::seconds(60)};
  Duration graceful_timeout{std::chrono::seconds(30)};

  // `cpu_affinity:` each child pinned to one CPU, spread evenly (handlers a jobs worker
  // starts inherit its CPU). Unset: no pinning. Empty list (`auto`): the CPUs the
  // supervisor may run on; else the CPUs listed.
  std::optional<std::vector<int>> cpu_affinity;

  // Parallel::Prefork's trap_signals: signal received by the supervisor -> signal
  // forwarded to this pool's children. Defaults: HUP->QUIT, QUIT->QUIT, TERM->TERM,
  // INT->TERM; USR2 and WINCH are forwarded only when mapped here.
  std::map<int, int> signals;
  int forwarded_signal(int received) const;

  // Function and jobs pools: children are forked by the fork server (a small copy of
  // the supervisor) rather than by the supervisor itself. `fork_server: false` for a
  // pool whose libraries need their pthread_atfork child handlers run in every child.
  bool fork_server = true;

  JobsConfig jobs;  // PoolKind::jobs only
};

struct Config {
  std::string path;      // the file as given
  std::string base_dir;  // its directory: relative paths are resolved against it
  LogConfig log;
  std::string pidfile;   // empty: none
  std::string node;      // this supervisor's name among many hosts (default: host name)
  // Named job sources. Without a `sources:` section there is one, "default": SQLite
  // at var/jobs.db beside the config file.
  std::map<std::string, SourceConfig> sources;
  std::vector<std::string> source_order;  // the names of `sources`, in the file's order
  std::vector<PoolConfig> pools;

  const PoolConfig* find_pool(const std::string& name) const;
  // The source that serves `queue` (the first jobs pool listing it), else the first.
  const SourceConfig* source_for_queue(const std::string& queue) const;
  // The source defined first in the file (nullptr when there is none).
  const SourceConfig* first_source() const;
};

// Thrown by load_config with every problem found, each as "FILE:LINE:COL: message".
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Reads, parses and validates the file. Throws ConfigError. `check_host`: also what
// must exist on the machine that runs the pools: commands found and executable,
// working directories, users and groups, the directories of the log file and pidfile,
// library pools and in-process handlers registered in this program (false for tools
// such as preforkctl, which only use the sources and may run on another host).
Config load_config(const std::string& path, bool check_host = true);

// "250ms", "30s", "5m", "1h", "1.5s", "0". Throws std::invalid_argument.
Duration parse_duration(const std::string& text);

// "TERM", "SIGTERM", "term" -> SIGTERM. Returns 0 for an unknown name.
int signal_from_name(const std::string& name);
std::string signal_name(int signo);

}  // namespace preforkd
