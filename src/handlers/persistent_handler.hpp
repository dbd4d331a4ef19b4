// The persistent handler: one long-lived process per worker child, JSON lines.
//   preforkd -> handler:  {"id":"..","queue":"..","attempt":1,"payload":<JSON>}
//   handler -> preforkd:  {"id":"..","status":"ok"}
//                         {"id":"..","status":"error","error":"..","retry":true}
// Restarted when it dies (the job it held fails and follows the retry policy) and
// recycled with its worker child.
#pragma once

#include <memory>

#include "handlers/handler.hpp"
#include "handlers/handler_process.hpp"

namespace preforkd {

class PersistentHandler final : public Handler {
 public:
  explicit PersistentHandler(const PoolConfig& pool);
  ~PersistentHandler() override;  // closes the handler's stdin and waits for it to exit
  HandlerOutcome run(const Job& job, const RunControl& control) override;

 private:
  HandlerProcess& process();
  HandlerOutcome run_job(const Job& job, const RunControl& control);
  // nullopt: the handler exited without reading a byte of the request (`request_bytes`
  // long), so the job never reached it.
  std::optional<HandlerOutcome> read_answer(const Job& job, const RunControl& control, size_t request_bytes);

  const PoolConfig& pool_;
  std::unique_ptr<HandlerProcess> process_;
};

// The request line for `job` (payload embedded as JSON; text that is not JSON is
// embedded as a string) and the parsed answer; exposed for unit tests.
std::string persistent_request(const Job& job);
std::optional<HandlerOutcome> parse_persistent_answer(const std::string& line,
                                                      const std::string& job_id,
                                                      std::string* problem);

}  // namespace preforkd
