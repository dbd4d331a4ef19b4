// Durations as operators write them: 250ms, 30s, 5m, 1h, 1.5s, 0.
#include <charconv>
#include <stdexcept>
#include <string>

#include "preforkd/config.hpp"

namespace preforkd {

Duration parse_duration(const std::string& text) {
  auto fail = [&](const std::string& why) -> Duration {
    throw std::invalid_argument("'" + text + "' is not a duration (" + why +
                                "; write e.g. 250ms, 30s, 5m, 1h)");
  };
  if (text == "0") return Duration{0};
  size_t unit_at = text.find_first_not_of("0123456789.");
  if (!text.empty() && text[0] == '-') return fail("a duration cannot be negative");
  if (unit_at == 0 || text.empty()) return fail("it must start with a number");
  if (unit_at == std::string::npos) return fail("a unit is missing");
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + unit_at, value);
  if (ec != std::errc() || end != text.data() + unit_at) return fail("bad number");
  std::string unit = text.substr(unit_at);
  double ms_per_unit = 0;
  if (unit == "ms") ms_per_unit = 1;
  else if (unit == "s") ms_per_unit = 1000;
  else if (unit == "m") ms_per_unit = 60'000;
  else if (unit == "h") ms_per_unit = 3'600'000;
  else return fail("unknown unit '" + unit + "'");
  double ms = value * ms_per_unit;
  constexpr double max_ms = 30.0 * 24 * 3'600'000;  // 30 days: beyond that it is a typo
  if (ms > max_ms) return fail("longer than 30 days");
  return Duration{static_cast<int64_t>(ms + 0.5)};
}

}  // namespace preforkd
