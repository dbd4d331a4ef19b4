#include "sources/job_ids.hpp"

#include <charconv>

namespace preforkd {

std::optional<int64_t> parse_job_id(const std::string& id) {
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
  if (ec != std::errc() || end != id.data() + id.size() || value <= 0) return std::nullopt;
  return value;
}

}  // namespace preforkd
