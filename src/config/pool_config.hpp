// Reading one entry of `pools:` (see pool_config.cpp).
#pragma once

#include <optional>

#include "config/yaml_fields.hpp"

namespace preforkd::config_detail {

std::optional<PoolConfig> read_pool(const std::string& name, const YAML::Node& key_node,
                                    const YAML::Node& node, const std::string& base_dir,
                                    Problems& problems);

}  // namespace preforkd::config_detail
