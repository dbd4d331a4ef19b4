// `sources:` (named queue backends, each validated by its own type) and the jobs
// pools' `source:` references to them.
#include <unistd.h>

#include "config/pool_config.hpp"
#include "util/names.hpp"

namespace preforkd::config_detail {

void read_sources(Config& config, const YAML::Node& node, Problems& problems) {
  if (!expect_map(node, "sources", problems)) return;
  for (const auto& entry : entries(node)) {
    const std::string path = "sources." + entry.key;
    if (!is_plain_name(entry.key)) problems.at(entry.key_node, why_not_plain("source name", entry.key));
    if (!expect_map(entry.value, path, problems)) continue;
    SourceConfig source;
    source.name = entry.key;
    source.base_dir = config.base_dir;
    source.defined_at = config.path + ":" + std::to_string(entry.key_node.Mark().line + 1) + ":" +
                        std::to_string(entry.key_node.Mark().column + 1);
    auto type_node = entry.value["type"];
    if (!type_node) {
      problems.at(entry.value, path + " needs 'type:' (one of: " +
                                   [] { std::string t; for (auto& n : job_source_types()) t += (t.empty() ? "" : ", ") + n; return t; }() + ")");
      continue;
    }
    auto type = read_string(type_node, path + ".type", problems);
    if (!type) continue;
    const JobSourceType* definition = find_job_source_type(*type);
    if (!definition) {
      std::string known;
      for (const auto& name : job_source_types()) known += (known.empty() ? "" : ", ") + name;
      problems.at(type_node, path + ".type: unknown source type '" + *type + "' (known: " + known + ")");
      continue;
    }
    source.type = *type;
    for (const auto& setting : entries(entry.value)) {
      if (setting.key == "type") continue;
      bool known = false;
      for (const auto& key : definition->keys) known |= key == setting.key;
      if (!known) {
        std::string allowed;
        for (const auto& key : definition->keys) allowed += " " + key;
        problems.at(setting.key_node, "unknown key '" + setting.key + "' in " + path +
                                          " (a " + *type + " source takes:" + allowed + ")");
        continue;
      }
      auto value = read_string(setting.value, path + "." + setting.key, problems);
      if (!value) continue;
      if (std::string message = definition->check(setting.key, *value); !message.empty())
        problems.at(setting.value, path + "." + setting.key + ": " + message);
      else
        source.settings[setting.key] = *value;
    }
    for (const auto& [key, what] : definition->required)
      if (!entry.value[key])
        problems.at(entry.key_node, path + ": a " + *type + " source needs '" + key + ":' (" + what + ")");
    config.source_order.push_back(source.name);
    config.sources[source.name] = std::move(source);
  }
}

void default_sources(Config& config) {
  if (!config.sources.empty()) return;
  SourceConfig source;
  source.name = "default";
  source.type = "sqlite";
  source.base_dir = config.base_dir;
  source.defined_at = config.path;
  config.source_order.push_back(source.name);
  config.sources[source.name] = std::move(source);
}

void check_pool_sources(Config& config, const YAML::Node& pools_node, Problems& problems) {
  for (auto& pool : config.pools) {
    if (pool.kind != PoolKind::jobs) continue;
    // Looked up only for a message: a lookup by key walks the mapping, once per pool.
    auto node = [&] { return pools_node[pool.name]; };
    if (pool.jobs.source.empty()) {
      if (config.sources.size() == 1) {
        pool.jobs.source = config.sources.begin()->first;
      } else {
        problems.at(node(), "pools." + pool.name + " needs 'source:' (there are " +
                              std::to_string(config.sources.size()) + " sources)");
      }
    } else if (!config.sources.count(pool.jobs.source)) {
      std::string known;
      for (const auto& [name, source] : config.sources) known += " " + name;
      problems.at(node()["source"], "pools." + pool.name + ".source: no source named '" +
                                      pool.jobs.source + "' (defined:" + known + ")");
    }
  }
  for (auto& [name, source] : config.sources) source.node = config.node;
}

}  // namespace preforkd::config_detail
