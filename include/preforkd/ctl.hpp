// The preforkctl command line, for programs that link the library and register their
// own sources or handlers.
#pragma once

namespace preforkd {

// preforkctl -c FILE enqueue|job|jobs|retry|stats ...; returns the exit status.
int run_ctl(int argc, char** argv);

}  // namespace preforkd
