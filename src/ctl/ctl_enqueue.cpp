// preforkctl enqueue: one job, or a batch of payloads from stdin in one transaction.
// Everything is checked before anything is written.
#include <charconv>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ctl/ctl_commands.hpp"
#include "util/json_text.hpp"

namespace preforkd::ctl {
namespace {

int parse_int(const std::string& option, const std::string& text, int min) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min)
    throw std::invalid_argument(option + " must be an integer" +
                                (min > INT32_MIN ? " >= " + std::to_string(min) : "") +
                                (ec == std::errc::result_out_of_range ? " up to 2147483647" : "") +
                                " (got '" + text + "')");
  return value;
}

// Valid JSON in, the same text out on one line, so it travels safely in line protocols:
// a raw line break in JSON is always whitespace (strings cannot hold one). Not parsed
// and written out again, which would turn 18446744073709551616 into 1.8446744073709552e+19.
std::string normalised_payload(const std::string& text, const std::string& where) {
  std::string why;
  if (parse_outside_json(text, &why).is_discarded())
    throw std::invalid_argument(where + " is not valid JSON: " + why + "; nothing was enqueued");
  std::string line = text;
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  // A byte order mark (an editor's, a Windows pipe's) is allowed before JSON and ignored
  // by the parser, but stored it made the text no JSON for whoever read it next (a
  // persistent handler's request line, `job --json`): dropped.
  constexpr std::string_view bom = "\xEF\xBB\xBF";
  if (auto at = line.find_first_not_of(" \t"); at != std::string::npos && line.compare(at, bom.size(), bom) == 0)
    line.erase(at, bom.size());
  auto first = line.find_first_not_of(" \t");
  return line.substr(first, line.find_last_not_of(" \t") - first + 1);
}

constexpr size_t max_unique_key_bytes = 1000;

NewJob job_template(const Args& args) {
  if (args.positional.size() != 1)
    throw std::invalid_argument("enqueue needs exactly one QUEUE (got " +
                                std::to_string(args.positional.size()) + ")");
  NewJob job;
  job.queue = args.positional.front();
  require_queue_name(job.queue, "queue name");
  if (args.has("--delay") && args.has("--at"))
    throw std::invalid_argument("give either --delay or --at, not both");
  if (auto delay = args.get("--delay")) {
    try {
      job.run_at = std::chrono::system_clock::now() + parse_duration(*delay);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--delay: ") + e.what());
    }
  }
  if (auto at = args.get("--at")) job.run_at = parse_time(*at);
  if (auto priority = args.get("--priority")) job.priority = parse_int("--priority", *priority, INT32_MIN);
  if (auto unique = args.get("--unique")) {
    if (unique->empty()) throw std::invalid_argument("--unique needs a non-empty KEY");
    // Every source must be able to index it: PostgreSQL's btree refused keys of about
    // 2.7 KB with an index error, and bytes that are not UTF-8 with an encoding error.
    bool utf8 = with_valid_utf8(*unique) == *unique;
    if (unique->size() > max_unique_key_bytes || !utf8)
      throw std::invalid_argument("--unique KEY must be UTF-8 text of at most " + std::to_string(max_unique_key_bytes) +
                                  " bytes (got " + std::to_string(unique->size()) + " bytes" +
                                  (utf8 ? "" : ", not UTF-8") + ")");
    job.unique_key = *unique;
  }
  if (auto attempts = args.get("--max-attempts")) job.max_attempts = parse_int("--max-attempts", *attempts, 1);
  return job;
}

// The connection broke before the server answered: the jobs may be there or not. A
// caller that took the failure for "nothing written" and enqueued again ran them twice.
[[noreturn]] void throw_outcome_unknown(const OutcomeUnknown& e, size_t count, const std::string& queue) {
  for (const auto& id : e.done_before) std::printf("%s\n", id.c_str());
  std::string what = std::string(e.what()) + ": the server's answer did not come, so ";
  if (e.done_before.empty())
    what += "the " + std::to_string(count) + " job(s) may or may not have been enqueued.";
  else
    what += "of the " + std::to_string(count) + " job(s), the first " + std::to_string(e.done_before.size()) +
            " were enqueued (their ids are printed), the next ones may or may not have been, and any after them "
            "were not.";
  what += " Look (preforkctl jobs --queue " + queue +
          ") before you enqueue again, or give jobs --unique keys, which make enqueueing again safe";
  throw OutcomeUnknown(what, e.done_before);
}

void print_result(const EnqueueResult& result, const NewJob& job) {
  std::printf("%s\n", result.id.c_str());
  if (result.duplicate)
    std::fprintf(stderr, "preforkctl: not enqueued: job %s already holds unique key '%s'\n",
                 result.id.c_str(), job.unique_key.c_str());
}

}  // namespace

int enqueue_command(const Args& args, JobSource& source) {
  NewJob job = job_template(args);
  if (args.has("--batch")) {
    if (args.has("--payload")) throw std::invalid_argument("--batch reads payloads from stdin: drop --payload");
    if (!job.unique_key.empty()) throw std::invalid_argument("--unique cannot apply to a whole --batch");
    std::vector<NewJob> jobs;
    std::string line;
    for (size_t number = 1; std::getline(std::cin, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      NewJob entry = job;
      entry.payload = normalised_payload(line, "stdin line " + std::to_string(number));
      jobs.push_back(std::move(entry));
    }
    std::string out;
    std::vector<EnqueueResult> results;
    try {
      results = source.enqueue_batch(jobs);
    } catch (const OutcomeUnknown& e) {
      throw_outcome_unknown(e, jobs.size(), job.queue);
    }
    for (const auto& result : results) out += result.id + "\n";
    std::fputs(out.c_str(), stdout);
    std::fprintf(stderr, "preforkctl: enqueued %zu job(s) on %s\n", jobs.size(), job.queue.c_str());
    return 0;
  }
  std::string payload = args.get("--payload").value_or("null");
  if (payload == "-") {
    payload.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    job.payload = normalised_payload(payload, "the payload on stdin");
  } else {
    job.payload = normalised_payload(payload, "--payload");
  }
  EnqueueResult result;
  try {
    result = source.enqueue(job);
  } catch (const OutcomeUnknown& e) {
    throw_outcome_unknown(e, 1, job.queue);
  }
  print_result(result, job);
  return 0;
}

void warn_if_no_pool_serves(const Config& config, const std::string& source, const std::string& queue) {
  std::string served;
  for (const auto& pool : config.pools) {
    if (pool.kind != PoolKind::jobs || pool.jobs.source != source) continue;
    for (const auto& name : pool.jobs.queues) {
      if (name == queue) return;
      served += (served.empty() ? "" : ", ") + name;
    }
  }
  std::fprintf(stderr,
               "preforkctl: warning: no pool in %s takes queue '%s' from source '%s' (its pools take: "
               "%s); the job waits there until one does\n",
               config.path.c_str(), queue.c_str(), source.c_str(), served.empty() ? "none" : served.c_str());
}

void require_queue_name(const std::string& name, const std::string& what) {
  if (!is_valid_queue_name(name))
    throw std::invalid_argument(what + " '" + name +
                                "' is not valid: use letters, digits, '_', '.', ':', '-' (1-200)");
}

}  // namespace preforkd::ctl
