#include "sources/job_messages.hpp"

#include "util/log.hpp"

namespace preforkd {

std::string unique_key_held_message(const std::string& id, const std::string& unique_key,
                                    const std::string& holder_id, const std::string& holder_state) {
  return "job " + id + " cannot be retried now: its unique key '" + unique_key + "' is held by job " +
         holder_id + " (" + holder_state + "), and only one job per key may wait or run; retry it " +
         "once job " + holder_id + " has ended, or enqueue the work again";
}

std::string running_job_not_deleted_message(const std::string& id, const std::string& holder) {
  return "job " + id + " is running" + (holder.empty() ? "" : " (held by " + holder + ")") +
         ": it is not deleted while its worker may still report on it; delete it once it has "
         "finished (see preforkctl job " + id + ")";
}

void log_leases_taken_back(const std::string& source, const std::vector<TakenBackJob>& jobs) {
  constexpr size_t shown = 10;  // a dead worker that held a batch of 500 is not 500 lines
  for (size_t i = 0; i < jobs.size() && i < shown; ++i)
    spdlog::warn("{}: job {}: {}; queued again", source, jobs[i].id, jobs[i].why);
  if (jobs.size() > shown)
    spdlog::warn("{}: {} more job(s) of workers that died or hung queued again", source,
                 jobs.size() - shown);
}

std::string deletable_states_text(std::span<const JobState> states) {
  std::string text = ",";
  for (JobState state : states)
    if (state != JobState::running) text += std::string(job_state_name(state)) + ",";
  return text;
}

}  // namespace preforkd
