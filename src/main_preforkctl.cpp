// preforkctl: the operator's tool for the configured job sources (enqueue, inspect,
// retry). Everything but argument dispatch lives in the library (src/ctl).
#include "preforkd/ctl.hpp"

int main(int argc, char** argv) { return preforkd::run_ctl(argc, argv); }
