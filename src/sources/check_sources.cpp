// Up-front source check (see check_sources.hpp).
#include "sources/check_sources.hpp"

#include <set>

namespace preforkd {

namespace {

std::set<std::string> used_sources(const Config& config) {
  std::set<std::string> used;
  for (const auto& pool : config.pools)
    if (pool.kind == PoolKind::jobs && config.sources.count(pool.jobs.source))
      used.insert(pool.jobs.source);
  return used;
}

}  // namespace

bool has_sources_to_check(const Config& config) { return !used_sources(config).empty(); }

std::vector<std::string> check_sources(const Config& config) {
  std::vector<std::string> problems;
  for (const auto& name : used_sources(config)) {
    auto it = config.sources.find(name);
    try {
      open_job_source(it->second);
    } catch (const std::exception& e) {
      problems.push_back(it->second.defined_at + ": source '" + name + "': " + e.what());
    }
  }
  return problems;
}

}  // namespace preforkd
