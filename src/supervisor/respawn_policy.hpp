// When to replace a child that exited: at once after a clean exit, after a growing,
// capped delay while children keep failing, so a broken command never becomes a fork
// storm. Pure logic: the supervisor feeds it exits and asks for delays.
#pragma once

#include <chrono>

#include "preforkd/config.hpp"

namespace preforkd {

class RespawnPolicy {
 public:
  RespawnPolicy(Duration base, Duration max) : base_(base), max_(max) {}

  // A child that lived at least this long proves the pool healthy again.
  static constexpr Duration healthy_lifetime = std::chrono::seconds(10);

  // Returns the delay before the replacement may start.
  Duration on_exit(bool clean, Duration lifetime);

  int consecutive_failures() const { return consecutive_failures_; }

 private:
  Duration base_;
  Duration max_;
  int consecutive_failures_ = 0;
};

}  // namespace preforkd
