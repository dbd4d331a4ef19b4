// preforkctl's command line: `preforkctl -c FILE COMMAND [ARGS] [--options]`, parsed
// into a command name, positional arguments and options, with usage errors as text.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace preforkd::ctl {

struct Args {
  std::string config_path;
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // "--delay" -> "10s"; flags -> ""
  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const {
    auto it = options.find(name);
    return it == options.end() ? std::nullopt : std::optional(it->second);
  }
};

// `value_options` take a value, `flags` do not. Throws std::invalid_argument.
Args parse_args(int argc, char** argv, const std::set<std::string>& value_options,
                const std::set<std::string>& flags);

}  // namespace preforkd::ctl
