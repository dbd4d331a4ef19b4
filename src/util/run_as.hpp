// Running a check the way a pool's user will see the machine: root passes every
// permission check, so a root supervisor asks a child switched to that user.
#pragma once

#include <functional>
#include <string>

#include "util/credentials.hpp"

namespace preforkd {

// Runs `task` in a forked child switched to `credentials` and returns what it returned
// ("": nothing to report), or why the child could not run it. The child dies with the
// caller and never returns from this call; `task` runs in a copy of a process that may
// have been single-threaded only, so it should do little more than system calls.
std::string run_as(const Credentials& credentials, const std::function<std::string()>& task);

}  // namespace preforkd
