// Waiting on a figure another process changes: a done count, a queue length.
#pragma once

#include <sys/types.h>

#include <functional>
#include <vector>

namespace bench {

// Reads `read()` every every_ms until pred(value) holds or deadline_s has passed, and
// returns the last value. When one of `watched` (tracked children) exits first, it is
// reaped and one last value is read: a daemon that died would otherwise cost the whole
// deadline.
long long poll_until(const std::function<long long()>& read, const std::function<bool(long long)>& pred,
                     double deadline_s, int every_ms, const std::vector<pid_t>& watched = {});

}  // namespace bench
