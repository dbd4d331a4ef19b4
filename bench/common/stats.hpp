// The two statistics the reports use.
#pragma once

#include <vector>

namespace bench {

// Of the repeated runs of one scenario; NAN for none.
double median(std::vector<double> values);
// Nearest rank (p in 0..100), for latency samples; NAN for none.
double percentile(std::vector<double> values, double p);

}  // namespace bench
