// `type: redis`: its settings, their checks, and the registration line.
#include "preforkd/config.hpp"
#include "sources/redis/redis_source.hpp"
#include "sources/source_settings.hpp"

namespace preforkd::redis {
namespace {

std::chrono::milliseconds duration_setting(const SourceConfig& config, const char* key,
                                           std::chrono::milliseconds fallback) {
  auto it = config.settings.find(key);
  return it == config.settings.end() ? fallback : parse_duration(it->second);
}

JobSourceType redis_source_type() {
  JobSourceType type;
  type.keys = {"url", "namespace", "lease", "keep_done", "timeout", "prefetch"};
  type.check = [](const std::string& key, const std::string& value) -> std::string {
    try {
      if (key == "url") parse_redis_url(value);
      else if (key == "namespace") {
        if (value.empty() || value.find_first_of(" \n") != std::string::npos)
          return "must be a non-empty name without spaces";
      } else if (key == "prefetch") {
        return check_prefetch(value);
      } else {
        auto d = parse_duration(value);
        if (key == "lease" && d < std::chrono::seconds(1)) return "must be at least 1s (got " + value + ")";
        // hiredis takes 0 for no limit: a server that accepts and never answers would
        // then hold a worker, and preforkd's start-up check, for ever.
        if (key == "timeout" && d.count() <= 0)
          return "must be more than 0 (the longest a connect or a command may wait; got " + value + ")";
      }
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  type.open = [](const SourceConfig& config, const std::string& worker_id) {
    RedisSettings settings;
    auto get = [&](const char* key, const std::string& fallback) {
      auto it = config.settings.find(key);
      return it == config.settings.end() ? fallback : it->second;
    };
    settings.url = parse_redis_url(get("url", "redis://127.0.0.1:6379/0"));
    settings.ns = get("namespace", "resque");
    settings.lease = duration_setting(config, "lease", settings.lease);
    settings.keep_done = duration_setting(config, "keep_done", settings.keep_done);
    settings.timeout = duration_setting(config, "timeout", settings.timeout);
    settings.prefetch = std::stoi(get("prefetch", "1"));
    settings.node = config.node;
    return std::unique_ptr<JobSource>(new RedisSource(std::move(settings), worker_id));
  };
  return type;
}

PREFORKD_REGISTER_JOB_SOURCE("redis", redis_source_type)

}  // namespace
}  // namespace preforkd::redis
