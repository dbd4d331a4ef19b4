// preforkctl: load the config, pick the source, run one command, report errors.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "ctl/ctl_commands.hpp"
#include "sources/check_sources.hpp"
#include "preforkd/ctl.hpp"

namespace preforkd {
namespace {

constexpr const char* usage_text =
    "usage: preforkctl -c FILE COMMAND [ARGS]\n"
    "\n"
    "  enqueue QUEUE [--payload JSON | --payload - | --batch] [--delay 10s] [--at TIME]\n"
    "                [--priority N] [--unique KEY] [--max-attempts N]\n"
    "                            add a job and print its id; --payload - reads the\n"
    "                            payload from stdin; --batch reads one JSON payload per\n"
    "                            line from stdin and prints one id per line\n"
    "  job ID [--json]           state, attempts, last error, timestamps of one job\n"
    "  jobs [--queue Q] [--state S] [--limit N] [--json]\n"
    "                            list jobs (S: queued, running, done, retry, dead)\n"
    "  retry ID                  requeue a dead (or retry-waiting) job now\n"
    "  delete ID [ID...]         delete jobs that are not running (queued, retry,\n"
    "                            dead, done), freeing their unique keys\n"
    "  delete --queue Q [--state S]\n"
    "                            delete every such job of queue Q (S: queued, retry,\n"
    "                            dead, done); running jobs are left to finish\n"
    "  stats [--json]            jobs per queue and state\n"
    "  migrate [--source NAME]   create the source's tables / keys now (also done on\n"
    "                            first use)\n"
    "\n"
    "  --source NAME             the source to use (default: the one serving QUEUE,\n"
    "                            else the only one; with several, commands that no\n"
    "                            queue routes need it)\n"
    "  --                        ends the options: what follows are arguments (a\n"
    "                            queue named -x: enqueue --payload '{}' -- -x)\n"
    "  -V, --version             print the version\n"
    "Works on the sources directly: no running preforkd is needed.\n";

int fail(const std::string& message, int status) {
  std::fprintf(stderr, "preforkctl: %s\n", message.c_str());
  return status;
}

// The problem first and alone, where a terminal shows it: not under 20 lines of usage.
int usage_error(const std::string& message) {
  std::fprintf(stderr, "preforkctl: %s\n(preforkctl --help lists the commands and options)\n", message.c_str());
  return 2;
}

const SourceConfig& choose_source(const Config& config, const ctl::Args& args) {
  if (auto name = args.get("--source")) {
    auto it = config.sources.find(*name);
    if (it == config.sources.end()) {
      std::string known;
      for (const auto& [source_name, source] : config.sources) known += " " + source_name;
      throw std::invalid_argument("no source named '" + *name + "' in " + config.path +
                                  " (defined:" + known + ")");
    }
    return it->second;
  }
  if (args.command == "enqueue" && !args.positional.empty())
    return *config.source_for_queue(args.positional.front());
  if (auto queue = args.get("--queue")) return *config.source_for_queue(*queue);
  if (config.sources.size() > 1) {
    // Ids are per source: job 7 of one is not job 7 of another. Taking the first source
    // showed another job than the one asked about, or the stats of half the queues.
    std::string known;
    for (const auto& name : config.source_order) known += " " + name;
    bool by_id = args.command == "job" || args.command == "retry" || args.command == "delete";
    throw std::invalid_argument(args.command + ": " + config.path + " has several sources (" + known.substr(1) +
                                "): say which one " + (by_id ? "holds the job" : "to use") + " with --source NAME" +
                                (args.command == "jobs" ? " (or give --queue Q)" : ""));
  }
  return *config.first_source();
}

// For a source kept in local files (SQLite) whose database does not exist: what to say
// instead of making an empty one. "" when it exists, or the source has no local files.
std::string missing_database(const Config& config, const SourceConfig& source) {
  const JobSourceType* type = find_job_source_type(source.type);
  if (!type || !type->files) return "";
  std::vector<std::string> files = type->files(source);
  struct stat st;
  if (files.empty() || ::stat(files.front().c_str(), &st) == 0 || errno != ENOENT) return "";
  return "no job database at " + files.front() + " (source '" + source.name + "' of " + config.path +
         "): nothing was ever enqueued there, and no preforkd has served it. Check that -c names the "
         "config preforkd runs with; `preforkctl enqueue` and preforkd's start make the file";
}

}  // namespace

int run_ctl(int argc, char** argv) {
  ctl::Args args;
  try {
    args = ctl::parse_args(argc, argv,
                           {"--payload", "--delay", "--at", "--priority", "--unique",
                            "--max-attempts", "--source", "--queue", "--state", "--limit"},
                           {"--json", "--batch", "-h", "--help", "-V", "--version"});
  } catch (const std::invalid_argument& e) {
    return usage_error(e.what());
  }
  if (args.has("-h") || args.has("--help") || args.command == "help") {
    std::fputs(usage_text, stdout);
    return 0;
  }
  if (args.has("-V") || args.has("--version") || args.command == "version") {
    std::printf("preforkctl %s\n", PREFORKD_VERSION);
    return 0;
  }
  struct CommandSpec {
    const char* name;
    int (*run)(const ctl::Args&, JobSource&);
    std::set<std::string> options;  // besides --source, which every command takes
    // For a command that takes no argument: what to say to one given (nullptr: it takes
    // some, and checks them itself).
    const char* no_arguments = nullptr;
    // Whether it may make the source's database: the others only read or change jobs
    // already there, and a database they made would hide a wrong -c behind empty output.
    bool creates_database = false;
  };
  const CommandSpec commands[] = {
      {"enqueue", ctl::enqueue_command,
       {"--payload", "--batch", "--delay", "--at", "--priority", "--unique", "--max-attempts"}, nullptr, true},
      {"job", ctl::job_command, {"--json"}},
      {"jobs", ctl::jobs_command, {"--queue", "--state", "--limit", "--json"},
       ": filter with --queue, --state, --limit"},
      {"retry", ctl::retry_command, {}},
      {"delete", ctl::delete_command, {"--queue", "--state"}},
      {"stats", ctl::stats_command, {"--json"}, ""},
      {"migrate", ctl::migrate_command, {}, ": name the source with --source NAME", true}};
  const CommandSpec* command = nullptr;
  for (const auto& spec : commands)
    if (args.command == spec.name) command = &spec;
  if (!command)
    return usage_error(args.command.empty() ? "no command given" : "unknown command '" + args.command + "'");
  for (const auto& [option, value] : args.options) {
    if (option == "--source" || command->options.count(option)) continue;
    // Taken and ignored, it would do something else than asked (`stats --queue Q`).
    std::string takes = "--source";
    for (const auto& allowed : command->options) takes += " " + allowed;
    return fail("option " + option + " does not apply to " + command->name + " (it takes: " + takes + ")", 2);
  }
  // Checked before the source is opened: opening one may create its tables (migrate).
  if (command->no_arguments && !args.positional.empty())
    return fail(std::string(command->name) + " takes no argument (got '" + args.positional.front() + "')" +
                    command->no_arguments, 2);
  if (args.config_path.empty()) return fail("no config file: give -c FILE", 2);

  Config config;
  try {
    config = load_config(args.config_path, false);
  } catch (const ConfigError& e) {
    for (const auto& problem : e.problems()) std::fprintf(stderr, "%s\n", problem.c_str());
    return fail("cannot use " + args.config_path + ": fix the problems above", 1);
  }
  std::string acting_as;  // as root: the pools' user this run switched to, for messages
  try {
    const SourceConfig& chosen = choose_source(config, args);
    if (::geteuid() == 0) {
      // Root could make the database its own, and the pools' user could then not use it.
      const JobSourceType* type = find_job_source_type(chosen.type);
      bool local_files = type && type->files && !type->files(chosen).empty();
      if (!local_files) {
        if (std::string why = open_first_as_pools_user(config, chosen.name); !why.empty())
          std::fprintf(stderr, "preforkctl: warning: source '%s' %s\n", chosen.name.c_str(), why.c_str());
      } else if (auto identity = first_pools_identity(config, chosen.name)) {
        // The whole run as the pools' user: every file it makes is theirs. As root, SQLite
        // made each -wal and -shm root's and gave it to the database's owner an instant
        // later; a worker that opened one in between could only read it, and failed its
        // next write ("attempt to write a readonly database").
        if (!switch_credentials(identity->credentials))
          return fail("cannot act as " + identity->name + " of the pools on source '" + chosen.name +
                          "': " + std::strerror(errno),
                      1);
        acting_as = identity->name;
      }
    }
    if (!command->creates_database)
      if (std::string missing = missing_database(config, chosen); !missing.empty()) return fail(missing, 1);
    std::unique_ptr<JobSource> source = open_job_source(chosen);
    int status = command->run(args, *source);
    if (status == 0 && args.command == "enqueue")
      ctl::warn_if_no_pool_serves(config, chosen.name, args.positional.front());
    return status;
  } catch (const std::invalid_argument& e) {
    return fail(e.what(), 2);
  } catch (const JobNotFound& e) {
    return fail(e.what(), 1);
  } catch (const OutcomeUnknown& e) {
    return fail(e.what(), 3);
  } catch (const SourceError& e) {
    if (!acting_as.empty())
      return fail(std::string(e.what()) + " (preforkctl ran as " + acting_as + ", as the pools on this source do)", 1);
    return fail(e.what(), 1);
  }
}

}  // namespace preforkd
