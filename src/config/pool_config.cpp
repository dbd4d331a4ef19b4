// One pool's YAML -> PoolConfig, with the checks that need the file system and the
// user database: the command exists and is executable, directories exist, users exist.
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

#include "config/pool_config.hpp"
#include "preforkd/job_source.hpp"
#include "preforkd/worker_function.hpp"
#include "util/credentials.hpp"
#include "util/names.hpp"
#include "util/run_as.hpp"

namespace preforkd::config_detail {
namespace {

constexpr std::initializer_list<const char*> pool_keys = {
    "command",        "function",  "workers",          "env",
    "working_directory", "user",   "group",            "spawn_interval",
    "err_respawn_interval", "err_respawn_max", "graceful_timeout", "signals", "cpu_affinity",
    "fork_server",
    // jobs pools
    "handler", "source", "queues", "max_requests_per_child", "max_requests_jitter",
    "timeout", "timeout_grace", "retry", "max_output_logged"};

// Signals whose forwarding a pool may choose (USR1 also reopens the supervisor's log).
constexpr const char* mappable_signals[] = {"HUP", "QUIT", "TERM", "INT", "USR1", "USR2", "WINCH"};

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// `auto`, or a list of CPU numbers this process may run on.
void read_cpu_affinity(PoolConfig& pool, const YAML::Node& node, const std::string& path,
                       Problems& problems) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) CPU_SET(0, &allowed);
  std::string usable;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &allowed)) usable += (usable.empty() ? "" : ", ") + std::to_string(cpu);
  if (node.IsScalar()) {
    if (node.Scalar() == "auto") pool.cpu_affinity.emplace();
    else if (node.Scalar() != "none")
      problems.at(node, path + ": '" + node.Scalar() + "' is not auto, none or a list of CPU numbers");
    return;
  }
  if (!node.IsSequence() || node.size() == 0) {
    problems.at(node, path + ": expected auto, none or a list of CPU numbers such as [0, 1]");
    return;
  }
  std::vector<int> cpus;
  for (const auto& item : node) {
    int cpu = -1;
    try {
      cpu = item.IsScalar() ? std::stoi(item.Scalar()) : -1;
      if (std::to_string(cpu) != item.Scalar()) cpu = -1;
    } catch (const std::exception&) {
      cpu = -1;
    }
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
      problems.at(item, path + ": '" + (item.IsScalar() ? item.Scalar() : std::string("?")) +
                            "' is not a CPU this supervisor may use (" + usable + ")");
      continue;
    }
    cpus.push_back(cpu);
  }
  pool.cpu_affinity = std::move(cpus);
}

// A source's setting written in a pool (`prefetch: 5` under a pool): say where it goes.
std::string source_key_hint(const std::string& key) {
  std::string types;
  for (const auto& type : job_source_types())
    if (const JobSourceType* definition = find_job_source_type(type))
      if (std::find(definition->keys.begin(), definition->keys.end(), key) != definition->keys.end())
        types += (types.empty() ? "" : ", ") + type;
  if (types.empty()) return "";
  return key + " is a setting of a job source (" + types + "): write it under sources: NAME, and name that "
         "source in the pool with source: NAME";
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

// Where execve will find argv[0]: a name without '/' is looked up in PATH now; a
// relative path is relative to working_directory when the pool has one (so it follows
// a capistrano `current` switch), else to the config file's directory.
void resolve_program(std::string& program, const PoolConfig& pool, const YAML::Node& node,
                     const std::string& path, const std::string& base_dir, Problems& problems) {
  if (program.find('/') == std::string::npos) {
    std::string search = pool.env.count("PATH") ? pool.env.at("PATH")
                                                : (::getenv("PATH") ? ::getenv("PATH") : "");
    std::istringstream dirs(search);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
      if (is_executable_file(candidate)) {
        program = candidate;
        return;
      }
    }
    problems.about_host(node[0], path + ": '" + program + "' not found in PATH (" + search + ")");
    return;
  }
  std::string dir = base_dir;
  if (program.front() != '/' && !pool.working_directory.empty()) dir = pool.working_directory;
  std::string full = absolute_from(dir, program);
  struct stat st {};
  if (::stat(full.c_str(), &st) != 0) {
    problems.about_host(node[0], path + ": '" + program + "' not found" +
                                     (program.front() == '/' ? "" : " (no " + full + ")"));
  } else if (!is_executable_file(full)) {
    problems.about_host(node[0], path + ": '" + full + "' is not an executable file (chmod +x it?)");
  } else if (pool.working_directory.empty() || program.front() == '/') {
    program = full;
  }
}

namespace {

// What a jobs worker (preforkd's own code) is sent must not end it by the default
// action: it handles QUIT, TERM, INT and HUP (as QUIT) and ignores what is ignored by
// default. Not KILL either: a stop that cuts jobs off leaves each one leased until its
// lease runs out (TERM stops now and gives the job back).
bool jobs_worker_survives(int signo) {
  for (int ok : {SIGQUIT, SIGTERM, SIGINT, SIGHUP, SIGWINCH, SIGCHLD, SIGURG, SIGCONT})
    if (signo == ok) return true;
  return false;
}

// After read_kind: what a jobs pool's workers may be sent depends on the kind.
void read_signals(PoolConfig& pool, const YAML::Node& node, const std::string& path,
                  Problems& problems) {
  if (!expect_map(node, path, problems)) return;
  std::map<int, YAML::Node> keys;  // one signal written two ways (HUP, SIGHUP, hup)
  for (const auto& entry : entries(node)) {
    int received = signal_from_name(entry.key);
    bool mappable = false;
    for (const char* name : mappable_signals) mappable |= received == signal_from_name(name);
    if (!mappable) {
      problems.at(entry.key_node, path + ": '" + entry.key +
                                      "' cannot be mapped; use one of HUP QUIT TERM INT USR1 USR2 WINCH");
      continue;
    }
    if (auto [first, inserted] = keys.emplace(received, entry.key_node); !inserted) {
      problems.at(entry.key_node, path + ": '" + entry.key + "' is " + signal_name(received) + " again (first as '" +
                                      first->second.Scalar() + "' at line " +
                                      std::to_string(first->second.Mark().line + 1) + "); keep one of them");
      continue;
    }
    auto value = read_string(entry.value, path + "." + entry.key, problems);
    if (!value) continue;
    int forwarded = signal_from_name(*value);
    if (forwarded == 0) {
      problems.at(entry.value, path + "." + entry.key + ": unknown signal '" + *value + "'");
      continue;
    }
    if (forwarded == SIGSTOP || forwarded == SIGTSTP || forwarded == SIGTTIN ||
        forwarded == SIGTTOU) {
      problems.at(entry.value, path + "." + entry.key + ": " + signal_name(forwarded) +
                                   " would freeze the children instead of telling them "
                                   "anything (a stop would then wait for them until KILL); "
                                   "map it to a signal they handle, or remove it");
      continue;
    }
    if (pool.kind == PoolKind::jobs && !jobs_worker_survives(forwarded)) {
      const char* advice = "; map it to QUIT (stop after the job), TERM or INT (stop now), or remove it";
      std::string why =
          forwarded == SIGKILL ? std::string("KILL would kill a jobs pool's workers in the middle of a job")
          : forwarded == SIGUSR1 || forwarded == SIGUSR2
              ? "a jobs pool's workers do nothing on " + signal_name(forwarded) + ", so it would tell them nothing"
              : "a jobs pool's workers have no handler for " + signal_name(forwarded) +
                    ", which would kill them in the middle of a job";
      problems.at(entry.value, path + "." + entry.key + ": " + why + advice);
      continue;
    }
    pool.signals[received] = forwarded;
  }
}

void read_kind(PoolConfig& pool, const YAML::Node& node, const std::string& path,
               Problems& problems) {
  bool has_command = node["command"].IsDefined(), has_function = node["function"].IsDefined(),
       has_handler = node["handler"].IsDefined();
  if (has_command + has_function + has_handler != 1) {
    problems.at(node, path + " needs exactly one of 'command' (a program to run), "
                             "'function' (a registered C++ function) or 'handler' (a jobs pool "
                             "with 'queues')");
    return;
  }
  if (has_handler) {
    pool.kind = PoolKind::jobs;
    return;
  }
  if (has_command) {
    pool.kind = PoolKind::command;
    if (auto argv = read_string_list(node["command"], path + ".command", problems)) {
      if (argv->empty()) problems.at(node["command"], path + ".command must not be empty");
      pool.command = std::move(*argv);
    }
    return;
  }
  pool.kind = PoolKind::function;
  auto name = read_string(node["function"], path + ".function", problems);
  if (!name) return;
  pool.function = *name;
  if (problems.checks_host() && !find_worker_function(*name)) {
    std::string known;
    for (const auto& registered : registered_worker_functions()) known += " " + registered;
    problems.at(node["function"],
                path + ".function: '" + *name + "' is not registered in this program (" +
                    (known.empty() ? "it registers none: library pools need a program that "
                                     "links libpreforkd and calls register_worker_function"
                                   : "registered:" + known) + ")");
  }
}

// The checks above ran as the supervisor, and root passes any permission check. The
// children of a pool with `user:`/`group:` chdir and exec as that user: a directory or
// program it may not use would fail every spawn while --check said the file was fine.
void check_usable_by_pools_user(const PoolConfig& pool, const YAML::Node& node, const std::string& path,
                                Problems& problems) {
  std::optional<Credentials> credentials;
  try {
    credentials = resolve_credentials(pool.user, pool.group);
  } catch (const std::exception&) {
    return;  // a user or group that does not exist: reported where it is read
  }
  if (!credentials) return;
  struct Needed {
    YAML::Node node;
    std::string what;  // "pools.a.command: '/srv/x' cannot be executed"
    std::string file;
  };
  std::vector<Needed> needed;
  // Only what passed the checks above: a missing file is reported once, there.
  if (!pool.working_directory.empty() && is_directory(pool.working_directory))
    needed.push_back({node["working_directory"],
                      path + ".working_directory: '" + pool.working_directory + "' cannot be entered",
                      pool.working_directory});
  auto program = [&](const std::string& argv0, const YAML::Node& at, const std::string& where) {
    if (argv0.empty()) return;
    // Left relative by resolve_program only when it is relative to working_directory.
    std::string full = argv0.front() == '/' ? argv0 : absolute_from(pool.working_directory, argv0);
    if (is_executable_file(full)) needed.push_back({at, where + ": '" + full + "' cannot be executed", full});
  };
  if (pool.kind == PoolKind::command && !pool.command.empty())
    program(pool.command.front(), node["command"][0], path + ".command");
  if (pool.kind == PoolKind::jobs && pool.jobs.handler.kind != HandlerKind::in_process &&
      !pool.jobs.handler.argv.empty()) {
    const char* key = pool.jobs.handler.kind == HandlerKind::exec ? "exec" : "persistent";
    program(pool.jobs.handler.argv.front(), node["handler"][key][0], path + ".handler." + key);
  }
  if (needed.empty()) return;
  // One line per path refused: its index and errno.
  std::string refused = run_as(*credentials, [&] {
    std::string lines;
    for (size_t i = 0; i < needed.size(); ++i)
      if (::access(needed[i].file.c_str(), X_OK) != 0)
        lines += std::to_string(i) + " " + std::to_string(errno) + "\n";
    return lines;
  });
  std::string who = pool.user.empty() ? "group '" + pool.group + "'" : "user '" + pool.user + "'";
  std::istringstream lines(refused);
  size_t index = 0;
  int error = 0;
  // Anything else is the child failing to run (fork, setuid): not a fault of the file,
  // and each spawn will say it again.
  while (lines >> index >> error && index < needed.size())
    problems.at(needed[index].node,
                needed[index].what + " as " + who + ", which the pool's children run as (" + std::strerror(error) +
                    "): give that user search (x) permission on each directory of the path" +
                    (needed[index].file == pool.working_directory ? "" : ", and execute (x) on the program"));
}

}  // namespace

std::optional<PoolConfig> read_pool(const std::string& name, const YAML::Node& key_node,
                                    const YAML::Node& node, const std::string& base_dir,
                                    Problems& problems) {
  const std::string path = "pools." + name;
  if (!is_plain_name(name)) problems.at(key_node, why_not_plain("pool name", name));
  if (!expect_map(node, path, problems)) return std::nullopt;
  reject_unknown_keys(node, pool_keys, path, problems, source_key_hint);

  PoolConfig pool;
  pool.name = name;
  if (auto n = node["workers"]) {
    if (auto v = read_count(n, path + ".workers", problems)) pool.workers = *v;
  }
  if (auto n = node["env"]) {
    if (auto v = read_string_map(n, path + ".env", problems)) {
      // A name with '=', or none, makes an entry the child cannot read back (one with a
      // NUL is refused with every other value that holds one).
      for (const auto& entry : entries(n)) {
        if (!entry.key.empty() && entry.key.find('=') == std::string::npos) continue;
        problems.at(entry.key_node, path + ".env: '" + entry.key + "' is not a variable name (empty, or with '=')");
      }
      pool.env = std::move(*v);
    }
  }
  if (auto n = node["working_directory"]) {
    if (auto v = read_string(n, path + ".working_directory", problems)) {
      pool.working_directory = absolute_from(base_dir, *v);
      if (!is_directory(pool.working_directory))
        problems.about_host(n, path + ".working_directory: '" + pool.working_directory +
                                   "' does not exist or is not a directory");
    }
  }
  if (auto n = node["user"]) {
    if (auto v = read_string(n, path + ".user", problems)) {
      pool.user = *v;
      if (!::getpwnam(v->c_str())) problems.about_host(n, path + ".user: no such user '" + *v + "'");
    }
  }
  if (auto n = node["group"]) {
    if (auto v = read_string(n, path + ".group", problems)) {
      pool.group = *v;
      if (!::getgrnam(v->c_str())) problems.about_host(n, path + ".group: no such group '" + *v + "'");
    }
  }
  struct {
    const char* key;
    Duration* field;
  } durations[] = {{"spawn_interval", &pool.spawn_interval},
                   {"err_respawn_interval", &pool.err_respawn_interval},
                   {"err_respawn_max", &pool.err_respawn_max},
                   {"graceful_timeout", &pool.graceful_timeout}};
  for (auto& [key, field] : durations) {
    if (auto n = node[key]) {
      if (auto v = read_duration(n, path + "." + key, problems)) *field = *v;
    }
  }
  check_delay_cap(node, path, "err_respawn_interval", pool.err_respawn_interval, "err_respawn_max",
                  pool.err_respawn_max, problems);
  if (auto n = node["cpu_affinity"]) read_cpu_affinity(pool, n, path + ".cpu_affinity", problems);
  read_kind(pool, node, path, problems);
  if (auto n = node["signals"]) read_signals(pool, n, path + ".signals", problems);
  if (auto n = node["fork_server"]) {
    if (pool.kind == PoolKind::command)
      problems.at(n, path + ".fork_server applies only to function and jobs pools (a command "
                            "pool's children exec at once and never use it)");
    else if (auto v = read_bool(n, path + ".fork_server", problems))
      pool.fork_server = *v;
  }
  if (pool.kind == PoolKind::command && !pool.command.empty())
    resolve_program(pool.command.front(), pool, node["command"], path + ".command", base_dir,
                    problems);
  if (pool.kind == PoolKind::jobs) read_jobs(pool, node, path, base_dir, problems);
  else reject_job_keys(node, path, problems);
  if (problems.checks_host()) check_usable_by_pools_user(pool, node, path, problems);
  return pool;
}

}  // namespace preforkd::config_detail
