// The process-wide registry of in-process job handlers, keyed by queue name, filled
// before the supervisor starts and read by config validation and by worker children.
#include <map>

#include "preforkd/job_handler.hpp"

namespace preforkd {
namespace {

std::map<std::string, JobFunction>& registry() {
  static std::map<std::string, JobFunction> handlers;
  return handlers;
}

}  // namespace

void register_job_handler(const std::string& queue, JobFunction fn) {
  registry()[queue] = std::move(fn);
}

const JobFunction* find_job_handler(const std::string& queue) {
  auto it = registry().find(queue);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> registered_job_handlers() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : registry()) names.push_back(name);
  return names;
}

}  // namespace preforkd
