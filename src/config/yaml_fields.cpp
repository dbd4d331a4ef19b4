// Typed field readers with positions (see yaml_fields.hpp).
#include "config/yaml_fields.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <stdexcept>
#include <tuple>

namespace preforkd::config_detail {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

const char* type_name(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "nothing";
    default: return "a scalar";
  }
}

}  // namespace

std::string printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
      continue;
    }
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        static const char hex[] = "0123456789abcdef";
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
  }
  return out;
}

void Problems::at(const YAML::Mark& mark, const std::string& message) {
  if (mark.is_null()) {
    plain(message);
    return;
  }
  list_.push_back({mark.line, mark.column,
                   file_ + ":" + std::to_string(mark.line + 1) + ":" +
                       std::to_string(mark.column + 1) + ": " + printable(message)});
}

void Problems::at(const YAML::Node& node, const std::string& message) {
  if (node.IsNull())
    for (const auto& [value, key] : empty_values_)
      if (value.is(node)) return at(key, message);
  at(node.Mark(), message);
}

namespace {

// Collections are told apart by identity (Node::is: an alias is the anchored node
// itself), found through where they start; two collections may start at one place (a
// mapping and the anchored collection that is its first key).
struct Scan {
  Problems& problems;
  std::vector<YAML::Node> open;           // the collections that contain the current one
  std::multimap<int, YAML::Node> done;    // scanned already: an alias of one is not walked
                                          // again, so nested aliases ("billion laughs")
                                          // cost one walk, not 9^9
};

// A NUL written as an escape ("\0", "\x00", "\u0000"): the file has none, the value
// does, and the C strings it becomes (argv, environment, paths) would end there.
void reject_nul(const YAML::Node& node, Scan& scan) {
  if (node.IsScalar() && node.Scalar().find('\0') != std::string::npos)
    scan.problems.at(node.Mark(), "a NUL character (an escape such as \\0 or \\x00) in '" + node.Scalar() +
                                      "': the value would end there; remove it");
}

// A tag the reader would not apply: `!!binary aGk=` stayed base64 text, `!custom 3`
// was read as 3. Plain and quoted values (tag "?" or "!") and the core schema's own
// tags, which say what the value is anyway, pass.
void reject_unknown_tag(const YAML::Node& node, Scan& scan) {
  const std::string& tag = node.Tag();
  if (tag.empty() || tag == "?" || tag == "!") return;
  for (const char* core : {"str", "int", "float", "bool", "null", "map", "seq"})
    if (tag == std::string("tag:yaml.org,2002:") + core) return;
  scan.problems.at(node.Mark(), "the YAML tag '" + tag + "' is not supported (preforkd would read the value as if "
                                "it were not there): remove it");
}

bool scan_node(const YAML::Node& node, Scan& scan) {
  reject_nul(node, scan);
  reject_unknown_tag(node, scan);
  if (!node.IsSequence() && !node.IsMap()) return true;
  auto same = [&](const YAML::Node& other) { return other.is(node); };
  if (std::any_of(scan.open.begin(), scan.open.end(), same)) {
    scan.problems.at(node.Mark(), "the node anchored here contains an alias of itself (a "
                                  "cycle); write the values out instead");
    return false;
  }
  int at = node.Mark().pos;
  auto [from, to] = scan.done.equal_range(at);
  if (std::any_of(from, to, [&](const auto& entry) { return same(entry.second); })) return true;
  scan.done.emplace(at, node);
  scan.open.push_back(node);
  bool acyclic = true;
  if (node.IsSequence()) {
    for (const auto& item : node)
      if (!scan_node(item, scan)) acyclic = false;
  } else {
    std::map<std::string, YAML::Mark> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      YAML::Node key = it->first, value = it->second;
      reject_nul(key, scan);
      reject_unknown_tag(key, scan);
      // yaml-cpp keeps `<<` as a key like any other, so each reader called it a pool
      // name, an unknown key or a variable, at the anchor's line: one message instead.
      if (key.IsScalar() && key.Scalar() == "<<" && key.Tag() == "?") {  // plain, not quoted
        scan.problems.at(key.Mark(), "a merge key ('<<: *alias', a YAML 1.1 extension) is not supported: "
                                     "repeat the keys, or alias whole pools (b: *a)");
        acyclic = false;
        continue;
      }
      if (key.IsScalar()) {
        auto [first, inserted] = seen.emplace(key.Scalar(), key.Mark());
        if (!inserted)
          scan.problems.at(key.Mark(), "duplicate key '" + key.Scalar() + "' (first at line " +
                                           std::to_string(first->second.line + 1) +
                                           ", column " +
                                           std::to_string(first->second.column + 1) +
                                           "); keep one of them");
      }
      if (value.IsNull()) scan.problems.note_empty_value(value, key.Mark());
      if (!scan_node(value, scan)) acyclic = false;
    }
  }
  scan.open.pop_back();
  return acyclic;
}

}  // namespace

bool scan_document(const YAML::Node& root, Problems& problems) {
  Scan scan{problems, {}, {}};
  return scan_node(root, scan);
}

std::vector<std::string> Problems::take() {
  std::stable_sort(list_.begin(), list_.end(), [](const Problem& a, const Problem& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  std::vector<std::string> texts;
  for (auto& problem : list_) texts.push_back(std::move(problem.text));
  list_.clear();
  return texts;
}

std::vector<Entry> entries(const YAML::Node& map) {
  std::vector<Entry> out;
  if (!map.IsMap()) return out;
  for (auto it = map.begin(); it != map.end(); ++it)
    out.push_back({it->first.Scalar(), it->first, it->second});
  return out;
}

void reject_unknown_keys(const YAML::Node& map, std::initializer_list<const char*> allowed,
                         const std::string& path, Problems& problems,
                         const std::function<std::string(const std::string& key)>& placed_elsewhere) {
  for (const auto& entry : entries(map)) {
    if (std::find_if(allowed.begin(), allowed.end(),
                     [&](const char* key) { return entry.key == key; }) != allowed.end())
      continue;
    std::string message = "unknown key '" + entry.key + "' in " + (path.empty() ? "the top level" : path);
    if (std::string where = placed_elsewhere ? placed_elsewhere(entry.key) : ""; !where.empty()) {
      problems.at(entry.key_node, message + ": " + where);
      continue;
    }
    const char* best = nullptr;
    size_t best_distance = 3;  // suggest only near misses
    for (const char* key : allowed) {
      size_t distance = edit_distance(entry.key, key);
      if (distance < best_distance) best = key, best_distance = distance;
    }
    if (best) message += " (did you mean '" + std::string(best) + "'?)";
    else {
      message += "; allowed:";
      for (const char* key : allowed) message += std::string(" ") + key;
    }
    problems.at(entry.key_node, message);
  }
}

bool expect_map(const YAML::Node& node, const std::string& path, Problems& problems) {
  if (node.IsMap()) return true;
  problems.at(node, path + " must be a mapping (key: value), got " + type_name(node));
  return false;
}

std::optional<std::string> read_string(const YAML::Node& node, const std::string& path,
                                       Problems& problems) {
  if (node.IsScalar()) return node.Scalar();
  problems.at(node, path + " must be a string, got " + type_name(node));
  return std::nullopt;
}

std::optional<bool> read_bool(const YAML::Node& node, const std::string& path, Problems& problems) {
  if (node.IsScalar() && node.Scalar() == "true") return true;
  if (node.IsScalar() && node.Scalar() == "false") return false;
  problems.at(node, path + " must be true or false (got " +
                        (node.IsScalar() ? node.Scalar() : std::string(type_name(node))) + ")");
  return std::nullopt;
}

// Far above any real pool or retry count; keeps every count an int with room to add.
constexpr long max_count = 100000;

std::optional<int> read_count(const YAML::Node& node, const std::string& path,
                              Problems& problems) {
  const std::string text = node.IsScalar() ? node.Scalar() : "";
  long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  bool digits_only = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  if (ec == std::errc::result_out_of_range && digits_only) {
    problems.at(node, path + " must be at most " + std::to_string(max_count) + " (got " + text + ")");
    return std::nullopt;
  }
  if (!node.IsScalar() || text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      value < 0) {
    problems.at(node, path + " must be a non-negative integer (got " +
                          (!node.IsScalar() ? std::string(type_name(node)) : text.empty() ? "an empty string" : text) +
                          ")");
    return std::nullopt;
  }
  if (value > max_count) {
    problems.at(node, path + " must be at most " + std::to_string(max_count) + " (got " + text + ")");
    return std::nullopt;
  }
  return static_cast<int>(value);
}

std::optional<Duration> read_duration(const YAML::Node& node, const std::string& path,
                                      Problems& problems) {
  if (!node.IsScalar()) {
    problems.at(node, path + " must be a duration such as 250ms, 30s, 5m, got " + type_name(node));
    return std::nullopt;
  }
  try {
    return parse_duration(node.Scalar());
  } catch (const std::invalid_argument& e) {
    problems.at(node, path + ": " + e.what());
    return std::nullopt;
  }
}

std::optional<size_t> read_size(const YAML::Node& node, const std::string& path, Problems& problems) {
  const std::string text = node.IsScalar() ? node.Scalar() : "";
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  static constexpr std::pair<std::string_view, int> units[] = {
      {"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
  const auto* found = std::find_if(std::begin(units), std::end(units),
                                   [&](const auto& u) { return u.first == unit; });
  if (!node.IsScalar() || ec != std::errc() || end == text.data() || found == std::end(units)) {
    problems.at(node, path + " must be a size such as 65536, 64KiB, 1MiB or 2GiB (got " +
                          (node.IsScalar() ? text : std::string(type_name(node))) + ")");
    return std::nullopt;
  }
  constexpr uint64_t max_size = uint64_t{1} << 40;  // 1 TiB: more is a typo
  if (value > (max_size >> found->second)) {
    problems.at(node, path + " must be at most 1024GiB (got " + text + ")");
    return std::nullopt;
  }
  return static_cast<size_t>(value << found->second);
}

void check_delay_cap(const YAML::Node& mapping, const std::string& path, const char* first_key,
                     Duration first, const char* cap_key, Duration cap, Problems& problems) {
  if (cap >= first) return;
  YAML::Node at = mapping[cap_key] ? mapping[cap_key] : mapping[first_key];
  if (!at) return;
  problems.at(at, path + "." + cap_key + " (" + std::to_string(cap.count()) + "ms) is less than " + path + "." +
                      first_key + " (" + std::to_string(first.count()) + "ms): the cap of the delay must be at "
                      "least its first step; raise " + cap_key + " or lower " + first_key);
}

std::optional<std::vector<std::string>> read_string_list(const YAML::Node& node,
                                                         const std::string& path,
                                                         Problems& problems,
                                                         const char* example) {
  if (!node.IsSequence()) {
    problems.at(node, path + " must be a list of strings such as " + example + ", got " +
                          type_name(node) +
                          (node.IsScalar() && !node.Scalar().empty() ? " (write [" + node.Scalar() + "] for one)"
                           : node.IsScalar() ? " (an empty string)"
                                             : ""));
    return std::nullopt;
  }
  std::vector<std::string> items;
  bool ok = true;
  for (size_t i = 0; i < node.size(); ++i) {
    auto item = read_string(node[i], path + "[" + std::to_string(i) + "]", problems);
    if (item) items.push_back(*item);
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return items;
}

std::optional<std::map<std::string, std::string>> read_string_map(const YAML::Node& node,
                                                                  const std::string& path,
                                                                  Problems& problems) {
  if (!expect_map(node, path, problems)) return std::nullopt;
  std::map<std::string, std::string> out;
  for (const auto& entry : entries(node)) {
    if (auto value = read_string(entry.value, path + "." + entry.key, problems))
      out[entry.key] = *value;
  }
  return out;
}

std::string absolute_from(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return base_dir + "/" + path;
}

}  // namespace preforkd::config_detail
