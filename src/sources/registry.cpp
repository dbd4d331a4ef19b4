// The registry of queue backends by `type:`, filled by each backend's
// PREFORKD_REGISTER_JOB_SOURCE line at start-up.
#include <unistd.h>

#include <map>

#include "preforkd/job_source.hpp"

namespace preforkd {
namespace {

std::map<std::string, JobSourceType>& registry() {
  static std::map<std::string, JobSourceType> types;
  return types;
}

}  // namespace

void register_job_source_type(const std::string& type, JobSourceType definition) {
  registry()[type] = std::move(definition);
}

const JobSourceType* find_job_source_type(const std::string& type) {
  auto it = registry().find(type);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> job_source_types() {
  std::vector<std::string> names;
  for (const auto& [name, definition] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<JobSource> open_job_source(const SourceConfig& config) {
  const JobSourceType* type = find_job_source_type(config.type);
  if (!type) throw SourceError("unknown source type '" + config.type + "'");
  return type->open(config, config.node + ":" + std::to_string(::getpid()));
}

}  // namespace preforkd
