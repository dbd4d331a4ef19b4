// What Resque clients and tools expect on the wire: the job object a Resque client
// enqueues ({"class": ..., "args": [...]}), the id member preforkd adds to it, and the
// entries of NS:failed that resque-web shows.
#pragma once

#include <string>
#include <string_view>

#include "preforkd/job.hpp"

namespace preforkd::redis {

// A payload given to `preforkctl enqueue` as the job body stored in the queue list:
// a JSON object with "class" is taken as a Resque job as it is; anything else is
// wrapped as {"class":"Preforkd::Job","args":[payload]}. `payload` is valid JSON.
std::string resque_body(const std::string& payload);

// The job as the handler sees it: the stored JSON without preforkd's own member, and a
// payload preforkctl wrapped unwrapped again (a Resque client's job stays as it is).
std::string handler_payload(std::string_view stored);

// One entry of NS:failed, in Resque's format (failed_at "%Y/%m/%d %H:%M:%S UTC").
std::string resque_failure(std::string_view stored, const std::string& queue,
                           const std::string& worker, const std::string& error,
                           SystemTime failed_at);

}  // namespace preforkd::redis
