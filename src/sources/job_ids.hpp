// Job ids as preforkctl takes them: every backend numbers its jobs 1, 2, 3, ... and
// reads an id the same way, so that "003" is job 3 everywhere and " 1" or "+2" nowhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace preforkd {

// The job number `id` names: decimal digits only, 1 up to 2^63-1; nullopt otherwise.
std::optional<int64_t> parse_job_id(const std::string& id);

}  // namespace preforkd
