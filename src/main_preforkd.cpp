// preforkd: the supervisor binary. Argument handling lives in the library
// (run_main) so programs that register worker functions get the same CLI.
#include "preforkd/supervisor.hpp"

int main(int argc, char** argv) { return preforkd::run_main(argc, argv); }
