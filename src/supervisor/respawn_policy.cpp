// Exponential, capped respawn backoff (see respawn_policy.hpp).
#include "supervisor/respawn_policy.hpp"

#include <algorithm>

namespace preforkd {

Duration RespawnPolicy::on_exit(bool clean, Duration lifetime) {
  if (clean || lifetime >= healthy_lifetime) consecutive_failures_ = 0;
  if (clean) return Duration{0};
  ++consecutive_failures_;
  // base, 2*base, 4*base, ... capped; the shift is bounded so it cannot overflow.
  int doublings = std::min(consecutive_failures_ - 1, 20);
  Duration delay = base_ * (int64_t{1} << doublings);
  return std::min(std::max(delay, base_), std::max(max_, base_));
}

}  // namespace preforkd
