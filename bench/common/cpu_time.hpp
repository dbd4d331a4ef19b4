// CPU time of whole process trees, for "client CPU per job": a daemon's workers and
// handlers, or a peer's node/ruby processes, are its descendants.
#pragma once

#include <sys/types.h>

#include <vector>

namespace bench {

// CPU seconds (user + system) of `roots` and all their live descendants, from /proc.
double tree_cpu_seconds(const std::vector<pid_t>& roots);

}  // namespace bench
