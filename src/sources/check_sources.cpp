// Up-front source check (see check_sources.hpp).
#include "sources/check_sources.hpp"

#include <set>

namespace preforkd {

std::vector<std::string> check_sources(const Config& config) {
  std::set<std::string> used;
  for (const auto& pool : config.pools)
    if (pool.kind == PoolKind::jobs) used.insert(pool.jobs.source);
  std::vector<std::string> problems;
  for (const auto& name : used) {
    auto it = config.sources.find(name);
    if (it == config.sources.end()) continue;
    try {
      open_job_source(it->second);
    } catch (const std::exception& e) {
      problems.push_back(it->second.defined_at + ": source '" + name + "': " + e.what());
    }
  }
  return problems;
}

}  // namespace preforkd
