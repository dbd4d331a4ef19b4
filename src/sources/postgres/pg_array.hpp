// PostgreSQL array literals ({"a","b",NULL}) for passing many values as one text
// parameter: batch inserts through unnest(), lists of queues and keys.
#pragma once

#include <string>
#include <vector>

#include "sources/postgres/pg_connection.hpp"

namespace preforkd::postgres {

std::string array_literal(const std::vector<Param>& items);
std::string array_literal(const std::vector<std::string>& items);

}  // namespace preforkd::postgres
