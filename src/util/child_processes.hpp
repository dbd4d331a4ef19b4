// The processes whose parent is this one, found in /proc (this kernel may lack
// /proc/PID/task/TID/children).
#pragma once

#include <sys/types.h>

#include <vector>

namespace preforkd {

// Live children of the calling process (zombies left out), in no particular order.
std::vector<pid_t> live_children_of_self();

}  // namespace preforkd
