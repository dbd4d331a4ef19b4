// Messages about jobs that more than one backend gives, so that preforkctl says the same
// thing whatever the source.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "preforkd/job.hpp"

namespace preforkd {

// `preforkctl retry ID` of a job whose unique key another job holds now.
std::string unique_key_held_message(const std::string& id, const std::string& unique_key,
                                    const std::string& holder_id, const std::string& holder_state);

// `preforkctl delete ID` of a job that is running.
std::string running_job_not_deleted_message(const std::string& id, const std::string& holder);

// The log lines of a worker that took back jobs whose lease had run out (their worker
// died or hung): `source` as "sqlite /var/lib/app/jobs.db", each job as its id and its
// new last_error ("lease expired (held by host:pid)"). One line per job, the first ten.
struct TakenBackJob {
  std::string id;
  std::string why;
};
void log_leases_taken_back(const std::string& source, const std::vector<TakenBackJob>& jobs);

// The states a bulk delete may take, as ",queued,dead," (a running job never is): for a
// backend to test a state against with one string search.
std::string deletable_states_text(std::span<const JobState> states);

}  // namespace preforkd
