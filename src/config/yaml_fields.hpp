// Reading typed fields out of yaml-cpp nodes while collecting every problem with its
// position, so one --check run reports all of them as FILE:LINE:COL: message.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "preforkd/config.hpp"

namespace preforkd::config_detail {

// `text` with its control characters written as escapes (\n, \x1b): a value quoted in
// a message may hold any of them, and one message must stay one line that starts with
// FILE:LINE:COL, with no escape sequence reaching the terminal or the log.
std::string printable(const std::string& text);

class Problems {
 public:
  explicit Problems(std::string file) : file_(std::move(file)) {}
  void at(const YAML::Mark& mark, const std::string& message);
  // At the node; an empty value (`workers:` with nothing after it) is reported at its
  // key, which scan_document noted (yaml-cpp marks it at the token after it).
  void at(const YAML::Node& node, const std::string& message);
  void note_empty_value(const YAML::Node& value, const YAML::Mark& key) {
    empty_values_.push_back({value, key});
  }
  void plain(const std::string& message) { list_.push_back({-1, -1, file_ + ": " + printable(message)}); }
  // Checks of what must exist on the machine that runs the pools (programs, directories,
  // users and groups, functions registered in this program): off for tools such as
  // preforkctl, which only use the sources and may run on another host.
  void skip_host_checks() { host_checks_ = false; }
  bool checks_host() const { return host_checks_; }
  void about_host(const YAML::Node& node, const std::string& message) {
    if (host_checks_) at(node, message);
  }
  bool empty() const { return list_.empty(); }
  // In file order, so an operator can fix them top to bottom.
  std::vector<std::string> take();

 private:
  struct Problem {
    int line, column;  // -1 when the problem has no position
    std::string text;
  };
  std::string file_;
  bool host_checks_ = true;
  std::vector<Problem> list_;
  std::vector<std::pair<YAML::Node, YAML::Mark>> empty_values_;
};

// Walks the whole document once: reports a key given twice in one mapping (yaml-cpp
// keeps both and a lookup sees only the first, so a typo'd copy would be silently
// ignored) and notes where each empty value's key is. Returns false when an alias
// refers back to a node that contains it (`a: &x [*x]`): the document is a cycle that
// no reader may walk, and that is reported too; and when it holds a merge key (`<<`),
// which every reader would misread.
bool scan_document(const YAML::Node& root, Problems& problems);

// A mapping's entries in file order, each with the key's own node (for its position).
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};
std::vector<Entry> entries(const YAML::Node& map);

// Reports every key of `map` not in `allowed`, suggesting the closest allowed one, or
// what `placed_elsewhere` says of it (where such a key belongs; "" when nowhere).
void reject_unknown_keys(const YAML::Node& map, std::initializer_list<const char*> allowed,
                         const std::string& path, Problems& problems,
                         const std::function<std::string(const std::string& key)>& placed_elsewhere = {});

bool expect_map(const YAML::Node& node, const std::string& path, Problems& problems);
std::optional<std::string> read_string(const YAML::Node& node, const std::string& path,
                                       Problems& problems);
// `true` or `false` (YAML's other spellings of a boolean are not accepted: one way to say it).
std::optional<bool> read_bool(const YAML::Node& node, const std::string& path, Problems& problems);
std::optional<int> read_count(const YAML::Node& node, const std::string& path,
                              Problems& problems);
std::optional<Duration> read_duration(const YAML::Node& node, const std::string& path,
                                      Problems& problems);
// A number of bytes: `65536`, `64KiB`, `1MiB`, `2GiB` (powers of 1024).
std::optional<size_t> read_size(const YAML::Node& node, const std::string& path, Problems& problems);
// A growing delay (`first`, doubling up to `cap`) whose cap is below its first step:
// reported at the cap's key (or the first's, when the cap is the default), `path` the
// mapping that holds both.
void check_delay_cap(const YAML::Node& mapping, const std::string& path, const char* first_key,
                     Duration first, const char* cap_key, Duration cap, Problems& problems);
std::optional<std::vector<std::string>> read_string_list(const YAML::Node& node,
                                                         const std::string& path,
                                                         Problems& problems,
                                                         const char* example = "[perl, worker.pl]");
std::optional<std::map<std::string, std::string>> read_string_map(const YAML::Node& node,
                                                                  const std::string& path,
                                                                  Problems& problems);

// An absolute path: `path` as is when absolute, else joined to `base_dir`.
std::string absolute_from(const std::string& base_dir, const std::string& path);

}  // namespace preforkd::config_detail
