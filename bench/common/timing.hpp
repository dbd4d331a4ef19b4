// The one clock every measurement reads: CLOCK_MONOTONIC in nanoseconds (the in_process
// bench handler reads the same clock for the enqueue-to-start latency).
#pragma once

namespace bench {

long long now_ns();
double seconds_since(long long start_ns);
void sleep_ms(int ms);

}  // namespace bench
