// Messages about jobs that more than one backend gives, so that preforkctl says the same
// thing whatever the source.
#pragma once

#include <span>
#include <string>

#include "preforkd/job.hpp"

namespace preforkd {

// `preforkctl retry ID` of a job whose unique key another job holds now.
std::string unique_key_held_message(const std::string& id, const std::string& unique_key,
                                    const std::string& holder_id, const std::string& holder_state);

// `preforkctl delete ID` of a job that is running.
std::string running_job_not_deleted_message(const std::string& id, const std::string& holder);

// The states a bulk delete may take, as ",queued,dead," (a running job never is): for a
// backend to test a state against with one string search.
std::string deletable_states_text(std::span<const JobState> states);

}  // namespace preforkd
