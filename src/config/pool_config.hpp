// Reading one entry of `pools:` (see pool_config.cpp).
#pragma once

#include <optional>

#include "config/yaml_fields.hpp"

namespace preforkd::config_detail {

std::optional<PoolConfig> read_pool(const std::string& name, const YAML::Node& key_node,
                                    const YAML::Node& node, const std::string& base_dir,
                                    Problems& problems);

// Resolves argv[0] of a command or handler in place (see pool_config.cpp).
void resolve_program(std::string& program, const PoolConfig& pool, const YAML::Node& node,
                     const std::string& path, const std::string& base_dir, Problems& problems);

// The jobs half of a pool (jobs_config.cpp): handler, source, queues, limits, retry.
void read_jobs(PoolConfig& pool, const YAML::Node& node, const std::string& path,
               const std::string& base_dir, Problems& problems);
// A command or function pool given a jobs-only key: say so instead of ignoring it.
void reject_job_keys(const YAML::Node& node, const std::string& path, Problems& problems);

// `sources:` and the pools' references to them (source_config.cpp).
void read_sources(Config& config, const YAML::Node& node, Problems& problems);
void default_sources(Config& config);
void check_pool_sources(Config& config, const YAML::Node& pools_node, Problems& problems);

}  // namespace preforkd::config_detail
