// Behaviour of the plain config structs: defaults for forwarded signals, lookups,
// and the error that carries every problem found.
#include <signal.h>

#include "preforkd/config.hpp"

namespace preforkd {
namespace {

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += (text.empty() ? "" : "\n") + line;
  return text;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(join_lines(problems)), problems_(std::move(problems)) {}

int PoolConfig::forwarded_signal(int received) const {
  if (auto it = signals.find(received); it != signals.end()) return it->second;
  switch (received) {
    case SIGHUP:
    case SIGQUIT: return SIGQUIT;
    case SIGTERM:
    case SIGINT: return SIGTERM;
    default: return 0;
  }
}

const PoolConfig* Config::find_pool(const std::string& name) const {
  for (const auto& pool : pools)
    if (pool.name == name) return &pool;
  return nullptr;
}

const SourceConfig* Config::source_for_queue(const std::string& queue) const {
  for (const auto& pool : pools) {
    if (pool.kind != PoolKind::jobs) continue;
    for (const auto& name : pool.jobs.queues) {
      if (name != queue) continue;
      auto it = sources.find(pool.jobs.source);
      if (it != sources.end()) return &it->second;
    }
  }
  return first_source();
}

const SourceConfig* Config::first_source() const {
  for (const auto& name : source_order)
    if (auto it = sources.find(name); it != sources.end()) return &it->second;
  return sources.empty() ? nullptr : &sources.begin()->second;
}

}  // namespace preforkd
