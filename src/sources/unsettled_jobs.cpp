// See unsettled_jobs.hpp.
#include "sources/unsettled_jobs.hpp"

#include <iterator>

namespace preforkd {

JobSource::Unsettled unsettled_jobs(std::vector<std::string> done_ids, std::deque<Job>& not_started,
                                    const std::string& holder) {
  JobSource::Unsettled unsettled;
  for (std::string& id : done_ids) {
    Job done;
    done.id = std::move(id);
    done.lease_holder = holder;
    unsettled.done.push_back(std::move(done));
  }
  unsettled.not_started.assign(std::make_move_iterator(not_started.begin()),
                               std::make_move_iterator(not_started.end()));
  not_started.clear();
  return unsettled;
}

}  // namespace preforkd
