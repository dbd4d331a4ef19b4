// preforkctl delete: jobs that should never run (a mistyped queue, a mistaken batch) or
// that need not be kept (dead, done), by id or a whole queue at a time. Running jobs
// are left to finish: their workers still report on them.
#include <cstdio>
#include <set>

#include "ctl/ctl_commands.hpp"

namespace preforkd::ctl {
namespace {

constexpr const char* deletable = "queued, retry, dead, done";

int delete_ids(const Args& args, JobSource& source) {
  int status = 0;
  std::set<std::string> seen;
  for (const auto& id : args.positional) {
    if (!seen.insert(id).second) continue;  // `delete 5 5`: deleted once, not "no job 5"
    try {
      source.remove(id);
      std::printf("job %s deleted\n", id.c_str());
    } catch (const JobNotFound& e) {
      // The other ids are still deleted: a list from `jobs` may hold one that ran since.
      std::fprintf(stderr, "preforkctl: %s\n", e.what());
      status = 1;
    }
  }
  return status;
}

int delete_queue(const Args& args, JobSource& source, const std::string& queue) {
  require_queue_name(queue, "--queue");
  std::vector<JobState> states{JobState::queued, JobState::retry, JobState::dead, JobState::done};
  std::string which = "";
  if (auto name = args.get("--state")) {
    auto state = job_state_from_name(*name);
    if (!state || *state == JobState::running)
      throw std::invalid_argument("--state '" + *name + "' is not one of " + deletable +
                                  " (running jobs are never deleted)");
    states = {*state};
    which = " " + *name;
  }
  int64_t deleted = source.remove_queue(queue, states);
  std::printf("deleted %lld%s job(s) of queue %s\n", static_cast<long long>(deleted), which.c_str(),
              queue.c_str());
  if (!which.empty()) return 0;  // a state was asked for: the running jobs are not in question
  for (const auto& stats : source.stats())
    if (stats.queue == queue && stats.running > 0)
      std::fprintf(stderr, "preforkctl: %lld running job(s) of queue %s left alone: delete them once "
                   "they have finished\n", static_cast<long long>(stats.running), queue.c_str());
  return 0;
}

}  // namespace

int delete_command(const Args& args, JobSource& source) {
  if (auto queue = args.get("--queue")) {
    if (!args.positional.empty())
      throw std::invalid_argument("delete takes job IDs or --queue Q, not both");
    return delete_queue(args, source, *queue);
  }
  if (args.has("--state")) throw std::invalid_argument("--state needs --queue: delete --queue Q --state S");
  if (args.positional.empty())
    throw std::invalid_argument(std::string("delete needs job IDs, or --queue Q [--state S] (S: ") +
                                deletable + ")");
  return delete_ids(args, source);
}

}  // namespace preforkd::ctl
