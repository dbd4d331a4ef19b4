// Checks of settings that more than one source type accepts, so the same key reads the
// same and fails with the same message whatever the backend.
#pragma once

#include <string>

namespace preforkd {

// `prefetch:` jobs claimed per round trip / transaction: "" when fine, else the message.
std::string check_prefetch(const std::string& value);

}  // namespace preforkd
