#include "common/timing.hpp"

#include <chrono>
#include <ctime>
#include <thread>

namespace bench {

long long now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

double seconds_since(long long start_ns) { return static_cast<double>(now_ns() - start_ns) / 1e9; }

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace bench
