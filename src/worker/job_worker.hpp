// The life of a jobs-pool child: open its own source connection (never one shared
// across fork), then fetch -> handle -> complete / fail / release until QUIT, TERM or
// max_requests_per_child.
#pragma once

#include "preforkd/config.hpp"
#include "worker/child_context.hpp"

namespace preforkd {

// Returns the child's exit status: 0 after a requested stop or its request limit,
// non-zero when the source cannot be used (the supervisor respawns with backoff).
int run_job_worker(ForkedChildContext& context, const PoolConfig& pool, const SourceConfig& source);

}  // namespace preforkd
