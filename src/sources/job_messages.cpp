#include "sources/job_messages.hpp"

namespace preforkd {

std::string unique_key_held_message(const std::string& id, const std::string& unique_key,
                                    const std::string& holder_id, const std::string& holder_state) {
  return "job " + id + " cannot be retried now: its unique key '" + unique_key + "' is held by job " +
         holder_id + " (" + holder_state + "), and only one job per key may wait or run; retry it " +
         "once job " + holder_id + " has ended, or enqueue the work again";
}

}  // namespace preforkd
