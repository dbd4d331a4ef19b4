// The preforkd command line, shared by the preforkd binary and by programs that link
// the library to register worker functions.
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "preforkd/supervisor.hpp"
#include "sources/check_sources.hpp"
#include "supervisor/supervisor.hpp"
#include "util/log.hpp"
#include "util/pidfile.hpp"

namespace preforkd {
namespace {

constexpr const char* usage_text =
    "usage: preforkd -c FILE [--check]\n"
    "\n"
    "  -c, --config FILE   the YAML configuration (pools, log, pidfile)\n"
    "  -t, --check         validate FILE and exit: 0 when valid, 1 with every\n"
    "                      problem as FILE:LINE:COL: message\n"
    "  -V, --version       print the version\n"
    "  -h, --help          this text\n"
    "\n"
    "Runs in the foreground. Signals: HUP reload, QUIT graceful stop, TERM/INT fast\n"
    "stop, TTIN/TTOU one worker more/less per pool, USR1 reopen the log file.\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "preforkd: %s\n%s", message.c_str(), usage_text);
  return 2;
}

}  // namespace

int run_supervisor(const std::string& config_path) {
  hold_supervisor_signals();
  Config config;
  try {
    config = load_config(config_path);
  } catch (const ConfigError& e) {
    for (const auto& problem : e.problems()) std::fprintf(stderr, "%s\n", problem.c_str());
    std::fprintf(stderr, "preforkd: refusing to start: %zu problem(s) in %s\n",
                 e.problems().size(), config_path.c_str());
    return 1;
  }
  try {
    configure_logging(config.log);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "preforkd: cannot open log %s: %s\n", config.log.file.c_str(), e.what());
    return 1;
  }
  // With `log.file` set the log is not where systemd, daemontools or a terminal looks,
  // and with `log.level: off` there is none: a refusal goes to stderr as well.
  auto refuse = [&](const std::string& problem) {
    spdlog::critical("refusing to start: {}", problem);
    if (!config.log.file.empty() || config.log.level == "off")
      std::fprintf(stderr, "preforkd: refusing to start: %s\n", problem.c_str());
  };
  if (auto problems = check_sources(config); !problems.empty()) {
    for (const auto& problem : problems) refuse(problem);
    return 1;
  }
  std::optional<Pidfile> pidfile;
  try {
    if (!config.pidfile.empty()) pidfile.emplace(config.pidfile);
  } catch (const std::exception& e) {
    refuse(e.what());
    return 1;
  }
  Supervisor supervisor(std::move(config));
  return supervisor.run();
}

int run_main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-c" || arg == "--config" || arg.rfind("--config=", 0) == 0) {
      // Given twice, the last one would win without a word (preforkctl refuses it too).
      if (!config_path.empty())
        return usage_error(arg.substr(0, arg.find('=')) + ": the config file is given twice");
      if (arg.rfind("--config=", 0) == 0) {
        config_path = arg.substr(9);
      } else {
        if (i + 1 >= argc) return usage_error(arg + " needs a FILE");
        config_path = argv[++i];
      }
    } else if (arg == "-t" || arg == "--check") {
      check_only = true;
    } else if (arg == "-V" || arg == "--version") {
      std::printf("preforkd %s\n", PREFORKD_VERSION);
      return 0;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(usage_text, stdout);
      return 0;
    } else {
      return usage_error("unknown argument '" + arg + "'");
    }
  }
  if (config_path.empty()) return usage_error("no config file: give -c FILE");
  if (!check_only) return run_supervisor(config_path);
  try {
    Config config = load_config(config_path);
    std::printf("%s: ok (%zu pool(s))\n", config_path.c_str(), config.pools.size());
    return 0;
  } catch (const ConfigError& e) {
    for (const auto& problem : e.problems()) std::fprintf(stderr, "%s\n", problem.c_str());
    return 1;
  }
}

}  // namespace preforkd
