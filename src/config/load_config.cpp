// The whole file: parse YAML, read the top level (log, pidfile, pools), collect every
// problem, and either return a complete Config or throw ConfigError with all of them.
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>
#include <yaml-cpp/depthguard.h>

#include "config/pool_config.hpp"
#include "config/yaml_fields.hpp"
#include "preforkd/job_source.hpp"
#include "util/pidfile.hpp"

namespace preforkd {
namespace {

using config_detail::Problems;

constexpr std::initializer_list<const char*> top_keys = {"log", "pidfile", "node", "sources", "pools"};
constexpr std::initializer_list<const char*> log_keys = {"level", "format", "file"};
constexpr const char* log_levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};

std::string absolute_directory_of(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path absolute = fs::absolute(fs::path(path), ec);
  std::string dir = absolute.parent_path().lexically_normal().string();
  // "./preforkd.yaml" normalises to "/srv/app/": no slash doubled when a name is added.
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

// A file preforkd writes (pidfile, log.file), `key: PATH`: not empty (leaving the key out
// says "none"), relative to the config's directory, in a directory that exists, and not
// a directory itself. The absolute path, or "" when it is not a string.
std::string read_written_file(const std::string& base_dir, const YAML::Node& node, const std::string& key,
                              const char* when_left_out, Problems& problems) {
  auto text = config_detail::read_string(node, key, problems);
  if (!text) return "";
  if (text->empty()) {
    problems.at(node, key + " must not be empty (leave the key out " + when_left_out + ")");
    return "";
  }
  std::string file = config_detail::absolute_from(base_dir, *text);
  std::string dir = std::filesystem::path(file).parent_path().string();
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    problems.at(node, key + ": '" + file + "' is a directory; name a file in it");
  else if (!dir.empty() && (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
    problems.about_host(node, key + ": directory '" + dir + "' does not exist (create it first)");
  return file;
}

// Line `index` (from 0) of `text`; "" past its end.
std::string line_of(const std::string& text, int index) {
  std::istringstream in(text);
  std::string line;
  for (int i = 0; i <= index; ++i)
    if (!std::getline(in, line)) return "";
  return line;
}

// Equal for two paths to one file: by device and inode when it exists (a hard link has
// a path of its own), else by the path resolved.
std::string same_file_key(const std::string& path) {
  if (struct stat st; ::stat(path.c_str(), &st) == 0)
    return "inode " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
  return ec ? path : canonical.string();
}

// preforkd writes its pidfile and log: never over the config or a source's job files.
// True when the pidfile is refused so.
bool check_written_files_spare_the_rest(const Config& config, const YAML::Node& root,
                                        Problems& problems) {
  // Nothing written (logs to stderr, no pidfile): no path to resolve, at each start and HUP.
  if (config.log.file.empty() && config.pidfile.empty()) return false;
  std::vector<std::pair<std::string, std::string>> kept = {
      {same_file_key(config.path), "the config file itself"}};
  for (const auto& [name, source] : config.sources)
    if (const JobSourceType* type = find_job_source_type(source.type); type && type->files)
      for (const auto& file : type->files(source))
        kept.emplace_back(same_file_key(file), "a file of source '" + name + "' (" + file + ")");
  // Each path is resolved once (weakly_canonical: one system call per component).
  auto check = [&](const std::string& file, const YAML::Node& node, const std::string& key) {
    if (file.empty()) return false;
    std::string resolved = same_file_key(file);
    for (const auto& [path, what] : kept)
      if (resolved == path) {
        problems.at(node, key + ": '" + file + "' is " + what +
                              "; writing there would destroy it: choose another path");
        return true;
      }
    return false;
  };
  if (root["log"].IsMap()) check(config.log.file, root["log"]["file"], "log.file");
  if (!config.log.file.empty()) kept.emplace_back(same_file_key(config.log.file), "log.file too");
  return check(config.pidfile, root["pidfile"], "pidfile");
}

// A source's database that is a directory: said at --check, where the path is written,
// and not as the "cannot open" of the first worker.
void check_source_databases_are_no_directories(const Config& config, const YAML::Node& root,
                                               Problems& problems) {
  for (const auto& [name, source] : config.sources) {
    const JobSourceType* type = find_job_source_type(source.type);
    if (!type || !type->files) continue;
    std::vector<std::string> files = type->files(source);
    std::error_code ec;
    if (files.empty() || !std::filesystem::is_directory(files.front(), ec)) continue;
    const std::string& database = files.front();
    YAML::Node node = root["sources"].IsMap() ? root["sources"][name] : YAML::Node();
    if (node.IsMap() && node["path"])
      problems.at(node["path"], "sources." + name + ".path: '" + database +
                                    "' is a directory: give the path of the database file (such as " + database +
                                    "/jobs.db)");
    else
      problems.plain("the job database of source '" + name + "', " + database +
                     ", is a directory: move it away, or name another file with sources: { " + name +
                     ": { type: " + source.type + ", path: FILE } }");
  }
}

// Two sources on one database file (`var/x.db` and `./var/../var/x.db`) would be two
// names for one set of jobs, each with its own settings: one source, one file.
void check_sources_share_no_file(const Config& config, const YAML::Node& root, Problems& problems) {
  if (!root["sources"].IsMap()) return;
  std::map<std::string, std::string> owner;  // resolved file -> the source named first
  for (const auto& entry : config_detail::entries(root["sources"])) {
    auto source = config.sources.find(entry.key);
    if (source == config.sources.end()) continue;
    const JobSourceType* type = find_job_source_type(source->second.type);
    if (!type || !type->files) continue;
    std::vector<std::string> files = type->files(source->second);
    if (files.empty()) continue;  // the first is the database; the rest follow from it
    auto [it, first] = owner.emplace(same_file_key(files.front()), entry.key);
    if (!first)
      problems.at(entry.key_node, "sources." + entry.key + ": its database " + files.front() +
                                      " is source '" + it->second +
                                      "''s too; use that source (pools may share one)");
  }
}

std::string host_name() {
  char name[256] = "localhost";
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  std::string text(name);
  for (char& c : text)
    if (c == ':' || c == ' ') c = '-';
  return text.empty() ? "localhost" : text;
}

void read_log(Config& config, const YAML::Node& node, Problems& problems) {
  if (!config_detail::expect_map(node, "log", problems)) return;
  config_detail::reject_unknown_keys(node, log_keys, "log", problems);
  if (auto n = node["level"]) {
    if (auto level = config_detail::read_string(n, "log.level", problems)) {
      bool known = false;
      for (const char* name : log_levels) known |= *level == name;
      if (known) config.log.level = *level;
      else problems.at(n, "log.level: '" + *level + "' is not one of trace, debug, info, warn, error, critical, off");
    }
  }
  if (auto n = node["format"]) {
    if (auto format = config_detail::read_string(n, "log.format", problems)) {
      if (*format == "text") config.log.format = LogFormat::text;
      else if (*format == "json") config.log.format = LogFormat::json;
      else problems.at(n, "log.format: '" + *format + "' is not one of text, json");
    }
  }
  if (auto n = node["file"]) config.log.file = read_written_file(config.base_dir, n, "log.file", "to log to stderr", problems);
}

void read_pools(Config& config, const YAML::Node& node, Problems& problems) {
  if (!config_detail::expect_map(node, "pools", problems)) return;
  for (const auto& entry : config_detail::entries(node)) {
    if (auto pool = config_detail::read_pool(entry.key, entry.key_node, entry.value,
                                             config.base_dir, problems))
      config.pools.push_back(std::move(*pool));
  }
  if (config.pools.empty() && node.IsMap())
    problems.at(node, "pools: no pool defined; add at least one (see conf/preforkd.yaml)");
}

}  // namespace

Config load_config(const std::string& path, bool check_host) {
  Problems problems(path);
  if (!check_host) problems.skip_host_checks();
  // Looked at before it is opened: a directory opens as a stream that reads nothing; a
  // device (/dev/zero) or a huge file would be read into memory without end, by the
  // supervisor on HUP too; and opening a named pipe waits for a writer, for ever.
  constexpr off_t max_config_bytes = 16 << 20;
  if (struct stat st {}; ::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      problems.plain("is a directory; give the config file (e.g. " + path + "/preforkd.yaml)");
    else if (!S_ISREG(st.st_mode))
      problems.plain("is not a regular file (a device, a pipe or a socket); give the config file");
    else if (st.st_size > max_config_bytes)
      problems.plain("is " + std::to_string(st.st_size) +
                     " bytes, more than a config file can be (16 MiB); is it the right file?");
    if (!problems.empty()) throw ConfigError(problems.take());
  }
  std::ifstream in(path);
  if (!in) {
    problems.plain(std::string("cannot read: ") + std::strerror(errno));
    throw ConfigError(problems.take());
  }
  std::stringstream text;
  text << in.rdbuf();
  // YAML is text; a NUL cut names and values short without a word (`command: [/bin/t\0rue]`,
  // a NUL in an env value), or gave yaml-cpp's "unknown escape character".
  const std::string content = text.str();
  // Saved as UTF-16 (a Windows editor's "Unicode"): every other byte is a NUL.
  if (content.rfind("\xFF\xFE", 0) == 0 || content.rfind("\xFE\xFF", 0) == 0) {
    problems.plain("is UTF-16 text (it starts with a UTF-16 byte order mark): save it as UTF-8");
    throw ConfigError(problems.take());
  }
  if (size_t nul = content.find('\0'); nul != std::string::npos) {
    YAML::Mark at;
    at.pos = static_cast<int>(nul);
    for (int i = 0; i < at.pos; ++i) {
      if (content[static_cast<size_t>(i)] == '\n') ++at.line, at.column = 0;
      else ++at.column;
    }
    problems.at(at, "a NUL byte: a config file is text (is this a binary file?)");
    throw ConfigError(problems.take());
  }

  YAML::Node root;
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(content);
    if (!documents.empty()) root = documents.front();
    // yaml-cpp's Load would drop every document after the first without a word.
    for (size_t i = 1; i < documents.size(); ++i)
      if (!documents[i].IsNull())
        problems.at(documents[i].Mark(), "a second YAML document (after '---') is not read: "
                                         "preforkd takes one document per file; merge them");
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this one is "bad file".
    problems.at(e.mark, "YAML nested too deeply for the parser (hundreds of levels); "
                        "flatten it");
    throw ConfigError(problems.take());
  } catch (const YAML::ParserException& e) {
    // yaml-cpp says "illegal map value" or the like for a tab in the indentation.
    std::string line = line_of(content, e.mark.line);
    bool tab = line.substr(0, line.find_first_not_of(" \t")).find('\t') != std::string::npos;
    // yaml-cpp notices an unclosed '[' or '{' only where the file goes on without it.
    bool unclosed = e.msg.find("flow not found") != std::string::npos;
    // Lines ended by CR alone (classic Mac): yaml-cpp reads the file as one long line.
    bool cr_only = content.find('\r') != std::string::npos && content.find('\n') == std::string::npos;
    // A plain key may be at most 1024 characters: yaml-cpp then sees a value out of place.
    bool long_key = e.msg == "illegal map value" && e.mark.column > 1024;
    problems.at(e.mark, "YAML syntax error: " + e.msg +
                            (tab ? " (this line is indented with a tab: YAML allows spaces only)"
                             : cr_only ? " (the file's lines end in CR alone, which YAML does not take as a line "
                                         "end: save it with LF or CR LF line ends)"
                             : long_key ? " (the key before this ':' is longer than the 1024 characters YAML "
                                          "allows a key: shorten it)"
                             : unclosed ? " (a '[' or '{' before this point is not closed: look for the "
                                          "missing ']' or '}' on the lines above)"
                                        : ""));
    throw ConfigError(problems.take());
  }

  Config config;
  config.path = path;
  config.base_dir = absolute_directory_of(path);
  if (!root.IsMap()) {
    problems.at(root.IsNull() ? YAML::Mark() : root.Mark(),
                "the file must be a mapping with at least 'pools:' (see conf/preforkd.yaml)");
    throw ConfigError(problems.take());
  }
  if (!config_detail::scan_document(root, problems)) throw ConfigError(problems.take());
  config_detail::reject_unknown_keys(root, top_keys, "", problems);
  if (auto n = root["log"]) read_log(config, n, problems);
  if (auto n = root["pidfile"])
    config.pidfile = read_written_file(config.base_dir, n, "pidfile", "for no pidfile", problems);
  config.node = host_name();
  if (auto n = root["node"]) {
    if (auto node = config_detail::read_string(n, "node", problems)) {
      bool control = std::any_of(node->begin(), node->end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
      if (node->empty() || control || node->find_first_of(": \t") != std::string::npos)
        problems.at(n, "node: '" + *node + "' must be a non-empty name without ':', spaces or control characters");
      else config.node = *node;
    }
  }
  if (auto n = root["sources"]) config_detail::read_sources(config, n, problems);
  config_detail::default_sources(config);
  if (auto n = root["pools"]) {
    read_pools(config, n, problems);
    config_detail::check_pool_sources(config, n, problems);
  } else {
    problems.at(root.Mark(), "no 'pools:' section: add at least one pool (see conf/preforkd.yaml)");
  }

  bool pidfile_refused = check_written_files_spare_the_rest(config, root, problems);
  // Last, and only when nothing else was said of it: its "remove the file if it is an
  // old pidfile" is no advice for a config file or a directory.
  std::error_code ec;
  if (!config.pidfile.empty() && !pidfile_refused && !std::filesystem::is_directory(config.pidfile, ec))
    if (std::string why = why_not_a_pidfile(config.pidfile); !why.empty())
      problems.at(root["pidfile"], "pidfile: " + not_a_pidfile_message(config.pidfile, why));
  check_sources_share_no_file(config, root, problems);
  check_source_databases_are_no_directories(config, root, problems);
  if (!problems.empty()) throw ConfigError(problems.take());
  return config;
}

}  // namespace preforkd
