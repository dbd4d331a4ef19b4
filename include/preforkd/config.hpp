// The configuration as plain data: what the YAML file says, validated, with every
// relative path already resolved against the config file's directory.
#pragma once

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

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

  // Parallel::Prefork's trap_signals: signal received by the supervisor -> signal
  // forwarded to this pool's children. Defaults: HUP->QUIT, QUIT->QUIT, TERM->TERM,
  // INT->TERM; USR2 and WINCH are forwarded only when mapped here.
  std::map<int, int> signals;
  int forwarded_signal(int received) const;
};

struct Config {
  std::string path;      // the file as given
  std::string base_dir;  // its directory: relative paths are resolved against it
  LogConfig log;
  std::string pidfile;   // empty: none
  std::vector<PoolConfig> pools;

  const PoolConfig* find_pool(const std::string& name) const;
};

// Thrown by load_config with every problem found, each as "FILE:LINE:COL: message".
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Reads, parses and validates the file (including that commands exist and are
// executable and that working directories exist). Throws ConfigError.
Config load_config(const std::string& path);

// "250ms", "30s", "5m", "1h", "1.5s", "0". Throws std::invalid_argument.
Duration parse_duration(const std::string& text);

// "TERM", "SIGTERM", "term" -> SIGTERM. Returns 0 for an unknown name.
int signal_from_name(const std::string& name);
std::string signal_name(int signo);

}  // namespace preforkd
