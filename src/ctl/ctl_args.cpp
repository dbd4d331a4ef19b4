// Parsing preforkctl's arguments (see ctl_args.hpp).
#include "ctl/ctl_args.hpp"

#include <stdexcept>

namespace preforkd::ctl {

namespace {

// `enqueue q --unique --batch`: the key forgotten, the next option taken for it (and
// stdin never read). A value that looks like an option is written --unique=--KEY.
std::string value_after(const std::string& option, int& i, int argc, char** argv, const char* what) {
  if (i + 1 >= argc) throw std::invalid_argument(option + " needs " + what);
  std::string next = argv[i + 1];
  if (next.rfind("--", 0) == 0 || next == "-c")
    throw std::invalid_argument(option + " needs " + what + ", got the option '" + next + "' (for a value " +
                                "that starts with -- write " + option + "=VALUE)");
  ++i;
  return next;
}

}  // namespace

Args parse_args(int argc, char** argv, const std::set<std::string>& value_options,
                const std::set<std::string>& flags) {
  Args args;
  bool options_ended = false;  // after `--`: a queue named -x, job arguments as given
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!options_ended && arg == "--") {
      options_ended = true;
      continue;
    }
    if (options_ended) {
      (args.command.empty() ? args.command : args.positional.emplace_back()) = arg;
      continue;
    }
    std::string value;
    bool inline_value = false;
    if (arg.rfind("--", 0) == 0 && arg.find('=') != std::string::npos) {
      value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
      inline_value = true;
    }
    if (arg == "-c" || arg == "--config") {
      if (!inline_value) value = value_after(arg, i, argc, argv, "a FILE");
      if (!args.config_path.empty()) throw std::invalid_argument(arg + " given twice");
      args.config_path = value;
    } else if (arg.size() > 1 && arg[0] == '-' && arg != "-") {
      // Given twice, the last would win without a word: `delete --queue a --queue b`.
      if (args.options.count(arg)) throw std::invalid_argument(arg + " given twice");
      if (flags.count(arg)) {
        if (inline_value) throw std::invalid_argument(arg + " takes no value");
        args.options[arg] = "";
      } else if (value_options.count(arg)) {
        if (!inline_value) value = value_after(arg, i, argc, argv, "a value");
        args.options[arg] = value;
      } else {
        throw std::invalid_argument("unknown option '" + arg + "' (an argument that starts with '-' goes after " +
                                    "'--': COMMAND -- " + arg + ")");
      }
    } else if (args.command.empty()) {
      args.command = arg;
    } else {
      args.positional.push_back(arg);
    }
  }
  return args;
}

}  // namespace preforkd::ctl
