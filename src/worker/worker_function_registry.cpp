// The process-wide registry of library-pool functions, filled before the supervisor
// starts and read by config validation and by forked children.
#include <map>

#include "preforkd/worker_function.hpp"

namespace preforkd {
namespace {

std::map<std::string, WorkerFunction>& registry() {
  static std::map<std::string, WorkerFunction> functions;
  return functions;
}

}  // namespace

void register_worker_function(std::string name, WorkerFunction fn) {
  registry()[std::move(name)] = std::move(fn);
}

const WorkerFunction* find_worker_function(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> registered_worker_functions() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : registry()) names.push_back(name);
  return names;
}

}  // namespace preforkd
