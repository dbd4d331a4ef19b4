// Job state names as stored by the backends and shown by preforkctl, and queue names.
#include "preforkd/job.hpp"

#include "util/names.hpp"


namespace preforkd {

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::queued: return "queued";
    case JobState::running: return "running";
    case JobState::done: return "done";
    case JobState::retry: return "retry";
    case JobState::dead: return "dead";
  }
  return "queued";
}

std::optional<JobState> job_state_from_name(const std::string& name) {
  for (JobState state : {JobState::queued, JobState::running, JobState::done, JobState::retry,
                         JobState::dead})
    if (name == job_state_name(state)) return state;
  return std::nullopt;
}

void QueueStats::add(JobState state, int64_t count) {
  switch (state) {
    case JobState::queued: queued += count; break;
    case JobState::running: running += count; break;
    case JobState::retry: retry += count; break;
    case JobState::done: done += count; break;
    case JobState::dead: dead += count; break;
  }
}

bool is_valid_queue_name(const std::string& name) {
  return is_plain_name(name, ":");
}

}  // namespace preforkd
