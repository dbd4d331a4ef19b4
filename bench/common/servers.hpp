// Starting a throwaway server (redis-server, postgres) of one's own: a free loopback
// port, and the wait until it answers.
#pragma once

#include <sys/types.h>

#include <functional>

namespace bench {

// A TCP port free on 127.0.0.1 right now (the kernel's pick; a server that loses it to
// someone else fails to start and is started again on another one).
int free_port();

// Asks ready() up to `tries` times, every_ms apart, while the server `pid` runs: true as
// soon as it answers. Otherwise (it exited, or never answered) the server is KILLed by
// pid and reaped, and false is returned.
bool wait_until_serving(pid_t pid, int tries, int every_ms, const std::function<bool()>& ready);

}  // namespace bench
