// What a failed source hands to its successor (JobSource::take_unsettled), built the
// same way by every source that defers acks and prefetches.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "preforkd/job_source.hpp"

namespace preforkd {

// `done_ids`: the jobs finished whose result was not written yet; `not_started`: the
// jobs leased ahead, in lease order, moved out (the source holds none afterwards). The
// finished ones are named as leased by `holder`, the worker name the next connection
// has too, so that it writes them as its own.
JobSource::Unsettled unsettled_jobs(std::vector<std::string> done_ids, std::deque<Job>& not_started,
                                    const std::string& holder);

}  // namespace preforkd
