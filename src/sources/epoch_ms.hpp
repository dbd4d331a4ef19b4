// Job times as the sources store them: milliseconds since the Unix epoch (SQLite
// INTEGER columns, Redis hash fields and scores, PostgreSQL's extract(epoch) * 1000).
#pragma once

#include <chrono>
#include <cstdint>

#include "preforkd/job.hpp"

namespace preforkd {

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline SystemTime from_ms(int64_t ms) { return SystemTime(std::chrono::milliseconds(ms)); }

}  // namespace preforkd
