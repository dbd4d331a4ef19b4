// How a job is run (exec per job, a persistent process speaking JSON lines, or an
// in-process function), behind one interface the worker loop calls.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "preforkd/config.hpp"
#include "preforkd/job.hpp"

namespace preforkd {

struct HandlerOutcome {
  enum class Kind {
    done,
    retry,      // asked to be retried (exit 75, "retry": true): the retry policy decides when
    failed,     // the retry policy decides whether it runs again
    permanent,  // the handler said do not retry ("retry": false): dead now
    timeout,    // ran past `timeout`: stopped, then the retry policy decides
    given_back,  // fast stop: not run to completion, back to the queue uncounted
    exhausted    // not run: earlier runs that never reported (worker died) used its attempts
  } kind = Kind::done;
  std::string error;
};

// What the worker loop lends a running handler.
struct RunControl {
  std::chrono::milliseconds timeout{0};  // 0: none
  std::chrono::milliseconds grace{5000};  // TERM -> KILL
  int stop_fd = -1;                       // readable when QUIT or TERM arrived
  std::function<bool()> fast_stop;        // TERM arrived: give the job back
  std::chrono::milliseconds heartbeat_every{10000};
  std::function<void()> heartbeat;        // keeps the job's lease alive
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual HandlerOutcome run(const Job& job, const RunControl& control) = 0;
};

// The handler the pool's config asks for. `pool` outlives it.
std::unique_ptr<Handler> make_handler(const PoolConfig& pool, const SourceConfig& source);

}  // namespace preforkd
