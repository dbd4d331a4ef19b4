// The library entry points: run the supervisor on a config file, exactly as the
// preforkd binary does.
#pragma once

#include <string>

namespace preforkd {

// The preforkd command line (-c FILE, --check, --version, --help). Returns the exit
// status. Programs that register worker functions call this from main().
int run_main(int argc, char** argv);

// Runs in the foreground until a requested stop; returns the process exit status.
int run_supervisor(const std::string& config_path);

}  // namespace preforkd
