// The Redis source's operator views: job details from the job hashes, counts per
// queue, listing, and retry of a dead job. Not on the workers' hot path.
#include <algorithm>
#include <map>
#include <sstream>

#include "sources/job_ids.hpp"
#include "sources/epoch_ms.hpp"
#include "sources/job_messages.hpp"
#include "sources/redis/redis_scripts.hpp"
#include "sources/redis/redis_source.hpp"
#include "sources/redis/resque_format.hpp"

namespace preforkd::redis {
namespace {

SystemTime from_ms(const std::string& text) {
  try {
    return preforkd::from_ms(std::stoll(text));
  } catch (const std::exception&) {
    return SystemTime{};
  }
}

std::optional<SystemTime> optional_time(const std::map<std::string, std::string>& fields, const char* key) {
  auto it = fields.find(key);
  if (it == fields.end() || it->second.empty()) return std::nullopt;
  return from_ms(it->second);
}

std::map<std::string, std::string> hash_fields(const redisReply* reply) {
  std::map<std::string, std::string> fields;
  for (size_t i = 0; reply && i + 1 < reply->elements; i += 2)
    fields[reply_string(reply->element[i])] = reply_string(reply->element[i + 1]);
  return fields;
}

int to_number(const std::map<std::string, std::string>& fields, const char* key) {
  auto it = fields.find(key);
  try {
    return it == fields.end() || it->second.empty() ? 0 : std::stoi(it->second);
  } catch (const std::exception&) {
    return 0;
  }
}

JobInfo info_from(const std::string& id, const std::map<std::string, std::string>& f) {
  JobInfo info;
  info.id = id;
  auto get = [&](const char* key) {
    auto it = f.find(key);
    return it == f.end() ? std::string() : it->second;
  };
  info.queue = get("queue");
  info.payload = handler_payload(get("payload"));
  info.state = job_state_from_name(get("state")).value_or(JobState::queued);
  info.priority = to_number(f, "priority");
  info.attempts = to_number(f, "attempts");
  info.max_attempts = to_number(f, "max_attempts");
  info.unique_key = get("unique_key");
  info.last_error = get("last_error");
  info.locked_by = get("locked_by");
  info.created_at = from_ms(get("created_at"));
  info.run_at = from_ms(get("run_at"));
  info.started_at = optional_time(f, "started_at");
  info.finished_at = optional_time(f, "finished_at");
  return info;
}

// The id as the job's key names it ("003" is job 3); throws JobNotFound for no id.
std::string canonical_id(const std::string& id) {
  auto number = parse_job_id(id);
  if (!number) throw JobNotFound("no job with id '" + id + "' (Redis job ids are positive numbers)");
  return std::to_string(*number);
}

// `text` matched literally by SCAN's MATCH (a namespace may hold * ? [ ] \).
std::string glob_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

JobInfo RedisSource::get(const std::string& given_id) {
  const std::string id = canonical_id(given_id);
  auto fields = hash_fields(connection_.command({"HGETALL", key("job:" + id)}).get());
  if (fields.empty()) throw JobNotFound("no job with id " + id + " in redis " + settings_.url.display() +
                                        " namespace " + settings_.ns + " (done jobs are kept for keep_done)");
  return info_from(id, fields);
}

std::vector<JobInfo> RedisSource::list(const JobFilter& filter) {
  std::vector<std::string> ids;
  std::string cursor = "0";
  do {
    Reply page = connection_.command({"SCAN", cursor, "MATCH", glob_escaped(key("job:")) + "*", "COUNT", "1000"});
    cursor = reply_string(page->element[0]);
    for (size_t i = 0; i < page->element[1]->elements; ++i) {
      std::string name = reply_string(page->element[1]->element[i]);
      ids.push_back(name.substr(name.rfind(':') + 1));
    }
  } while (cursor != "0");
  std::sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  std::vector<JobInfo> out;
  for (const auto& id : ids) {
    if (out.size() >= filter.limit) break;
    auto fields = hash_fields(connection_.command({"HGETALL", key("job:" + id)}).get());
    if (fields.empty()) continue;
    JobInfo info = info_from(id, fields);
    if (!filter.queue.empty() && info.queue != filter.queue) continue;
    if (filter.state && info.state != *filter.state) continue;
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<QueueStats> RedisSource::stats() {
  std::map<std::string, QueueStats> by_queue;
  auto stats_for = [&](const std::string& queue) -> QueueStats& {
    auto& q = by_queue[queue];
    q.queue = queue;
    return q;
  };
  Reply queues = connection_.command({"SMEMBERS", settings_.ns + ":queues"});
  for (size_t i = 0; i < queues->elements; ++i) {
    std::string queue = reply_string(queues->element[i]);
    stats_for(queue).queued += connection_.command({"LLEN", settings_.ns + ":queue:" + queue})->integer;
  }
  Reply delayed = connection_.command({"ZRANGE", key("delayed"), "0", "-1"});
  for (size_t i = 0; i < delayed->elements; ++i) {
    std::string member = reply_string(delayed->element[i]);
    std::string queue = member.substr(0, member.find('\n'));
    std::string stored = member.substr(member.find('\n') + 1);
    size_t at = stored.rfind("\"preforkd\":{\"id\":\"");
    std::string id = at == std::string::npos ? "" : stored.substr(at + 18, stored.find('"', at + 18) - at - 18);
    std::string state = reply_string(connection_.command({"HGET", key("job:" + id), "state"}).get());
    (state == "retry" ? stats_for(queue).retry : stats_for(queue).queued) += 1;
  }
  Reply workers = connection_.command({"SMEMBERS", key("workers")});
  for (size_t i = 0; i < workers->elements; ++i) {
    Reply entries = connection_.command({"LRANGE", key("processing:" + reply_string(workers->element[i])), "0", "-1"});
    for (size_t j = 0; j < entries->elements; ++j) {
      std::string entry = reply_string(entries->element[j]);
      std::string queue = reply_string(
          connection_.command({"HGET", key("job:" + entry.substr(0, entry.find('\n'))), "queue"}).get());
      stats_for(queue).running += 1;
    }
  }
  for (auto [field, counter] : {std::pair{"done", &QueueStats::done}, std::pair{"dead", &QueueStats::dead}}) {
    auto counts = hash_fields(connection_.command({"HGETALL", key(field)}).get());
    for (const auto& [queue, count] : counts) stats_for(queue).*counter += std::stoll(count);
  }
  std::vector<QueueStats> out;
  for (auto& [name, q] : by_queue) out.push_back(q);
  return out;
}

void RedisSource::remove(const std::string& given_id) {
  const std::string id = canonical_id(given_id);
  std::string outcome = reply_string(eval(delete_script, {settings_.ns, id}).get());
  if (outcome == "deleted") return;
  if (outcome.rfind("running ", 0) == 0) throw JobNotFound(running_job_not_deleted_message(id, outcome.substr(8)));
  get(id);  // "missing": throws JobNotFound with the usual words
  throw JobNotFound("no job with id " + id);
}

int64_t RedisSource::remove_queue(const std::string& queue, std::span<const JobState> states) {
  // Each step is one script over a bounded number of jobs, so that a queue of millions
  // never blocks the server for long. The list first: every entry in it waits there,
  // records or not (a plain Resque client writes none).
  constexpr int chunk = 500;
  const std::string wanted = deletable_states_text(states);
  int64_t deleted = 0;
  if (wanted.find(",queued,") != std::string::npos) {
    for (;;) {
      int64_t taken = eval(drain_queue_script, {settings_.ns, queue, std::to_string(chunk)})->integer;
      deleted += taken;
      if (taken < chunk) break;
    }
  }
  // Then the records: jobs due later, waiting to retry, dead, done.
  std::string cursor = "0";
  do {
    Reply page = connection_.command({"SCAN", cursor, "MATCH", glob_escaped(key("job:")) + "*", "COUNT", std::to_string(chunk)});
    cursor = reply_string(page->element[0]);
    std::vector<std::string> args{settings_.ns, queue, wanted};
    for (size_t i = 0; i < page->element[1]->elements; ++i) {
      std::string name = reply_string(page->element[1]->element[i]);
      args.push_back(name.substr(name.rfind(':') + 1));
    }
    if (args.size() > 3) deleted += eval(delete_jobs_script, std::move(args))->integer;
  } while (cursor != "0");
  return deleted;
}

void RedisSource::retry_now(const std::string& given_id) {
  const std::string id = canonical_id(given_id);
  Reply reply = eval(retry_now_script, {settings_.ns, id, std::to_string(now_ms())}, true);
  if (reply->type != REDIS_REPLY_ERROR) return;
  std::string text(reply->str, reply->len);
  if (auto at = text.find("HELD "); at != std::string::npos) {
    // "HELD HOLDER STATE KEY": the key last, as it may hold spaces.
    std::istringstream words(text.substr(at + 5));
    std::string holder, state, key;
    words >> holder >> state;
    std::getline(words >> std::ws, key);
    throw JobNotFound(unique_key_held_message(id, key, holder, state));
  }
  throw JobNotFound(text);
}

}  // namespace preforkd::redis
