#include "sources/source_settings.hpp"

namespace preforkd {

std::string check_prefetch(const std::string& value) {
  int n = 0;
  try {
    n = std::stoi(value);
  } catch (const std::exception&) {
    n = 0;
  }
  if (n < 1 || n > 1000 || std::to_string(n) != value)
    return "must be a number from 1 to 1000 (got " + value + ")";
  return "";
}

}  // namespace preforkd
