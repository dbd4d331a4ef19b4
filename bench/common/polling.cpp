#include "common/polling.hpp"

#include "common/processes.hpp"
#include "common/timing.hpp"

namespace bench {

long long poll_until(const std::function<long long()>& read, const std::function<bool(long long)>& pred,
                     double deadline_s, int every_ms, const std::vector<pid_t>& watched) {
  long long until = now_ns() + static_cast<long long>(deadline_s * 1e9);
  for (;;) {
    long long n = read();
    if (pred(n) || now_ns() >= until) return n;
    for (pid_t w : watched)
      if (reap_if_exited(w)) return read();
    sleep_ms(every_ms);
  }
}

}  // namespace bench
