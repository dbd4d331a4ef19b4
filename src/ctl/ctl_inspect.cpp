// preforkctl job / jobs / retry / stats: what an operator looks at, as text or JSON.
#include <charconv>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "ctl/ctl_commands.hpp"
#include "util/json_text.hpp"

namespace preforkd::ctl {
namespace {

// Payloads go out as stored, not re-encoded: parsed and dumped, 1e2 became 100.0, a
// 23-digit integer a double, and the keys came sorted. Each stands in the tree as a
// placeholder string, replaced by its own text after the dump. The placeholder is found
// only as the value of a "payload" key: another field may hold the same text (a unique
// key an operator chose), and a key's closing quote, unescaped, is in no string.
class RawPayloads {
 public:
  nlohmann::json hold(const std::string& payload) {
    if (parse_outside_json(payload).is_discarded()) return payload;  // not JSON: shown as a string
    texts_.push_back(payload);
    return placeholder(texts_.size() - 1);
  }
  std::string dump(const nlohmann::json& value) const {
    std::string out = json_text(value, 2);
    size_t from = 0;  // the placeholders come in the order they were made
    for (size_t i = 0; i < texts_.size(); ++i) {
      const std::string key = "\"payload\": ";
      std::string token = key + nlohmann::json(placeholder(i)).dump();
      size_t at = out.find(token, from);
      if (at == std::string::npos) continue;
      out.replace(at, token.size(), key + texts_[i]);
      from = at + key.size() + texts_[i].size();
    }
    return out;
  }

 private:
  static std::string placeholder(size_t index) {
    return "\x01preforkd-payload-" + std::to_string(index) + "\x01";
  }
  std::vector<std::string> texts_;
};

nlohmann::json to_json(const JobInfo& info, RawPayloads& payloads) {
  auto time = [](const std::optional<SystemTime>& t) -> nlohmann::json {
    return t ? nlohmann::json(format_time(*t)) : nlohmann::json(nullptr);
  };
  return {{"id", info.id},
          {"queue", info.queue},
          {"state", job_state_name(info.state)},
          {"priority", info.priority},
          {"attempts", info.attempts},
          // 0 in the record: none given at enqueue, the pool's retry.max_attempts applies.
          {"max_attempts", info.max_attempts ? nlohmann::json(info.max_attempts) : nlohmann::json(nullptr)},
          {"unique_key", info.unique_key.empty() ? nlohmann::json(nullptr) : nlohmann::json(info.unique_key)},
          {"last_error", info.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(info.last_error)},
          {"locked_by", info.locked_by.empty() ? nlohmann::json(nullptr) : nlohmann::json(info.locked_by)},
          {"payload", payloads.hold(info.payload)},
          {"created_at", format_time(info.created_at)},
          {"run_at", format_time(info.run_at)},
          {"started_at", time(info.started_at)},
          {"finished_at", time(info.finished_at)},
          {"lease_until", time(info.lease_until)}};
}

void print_json(const nlohmann::json& value) { std::printf("%s\n", json_text(value, 2).c_str()); }

}  // namespace

SystemTime parse_time(const std::string& text) {
  // Before 2200: far beyond any real schedule, and well inside the nanosecond clock
  // (which wraps in 2262: a later time would silently become one in 1677, due at once).
  constexpr long long latest = 7258118400;  // 2200-01-01T00:00:00Z
  const std::string form = "write 2026-11-25T10:00:00Z (UTC) or Unix seconds";
  long long seconds = 0;
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc()) seconds = latest;  // out of range: too late
  } else {
    std::tm tm{};
    const char* end = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M", &tm);
    if (end && *end == ':') end = ::strptime(end, ":%S", &tm);
    bool utc = end && *end == 'Z';
    if (utc) ++end;
    if (!end || *end) throw std::invalid_argument("--at '" + text + "' is not a time: " + form);
    // Without a zone it could mean the local time as much as UTC: hours apart, unsaid.
    if (!utc)
      throw std::invalid_argument("--at '" + text + "' has no zone: add Z for UTC ('" + text +
                                  "Z'), or give Unix seconds for a local time (date -d '...' +%s)");
    std::tm given = tm;
    seconds = ::timegm(&tm);
    // timegm carries a day past the month's end over (February 30th is March 2nd).
    if (tm.tm_mday != given.tm_mday || tm.tm_mon != given.tm_mon || tm.tm_year != given.tm_year ||
        tm.tm_hour != given.tm_hour || tm.tm_min != given.tm_min || tm.tm_sec != given.tm_sec)
      throw std::invalid_argument("--at '" + text + "' is not a date that exists: " + form);
  }
  if (seconds >= latest)
    throw std::invalid_argument("--at '" + text + "' is too far ahead: give a time before 2200");
  // A time in the past runs the job now; one before 1970 is a mistake, and before 1677
  // it wrapped the nanosecond clock over into a later time.
  if (seconds < 0)
    throw std::invalid_argument("--at '" + text + "' is before 1970: give a time from 1970 on (one in the past runs the job now)");
  return SystemTime(std::chrono::seconds(seconds));
}

std::string format_time(SystemTime time) {
  auto since_epoch = std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch()).count();
  // Floored, so that a time before 1970 (a record another client wrote) shows its own
  // milliseconds, not 1000 minus them in two digits.
  long long ms = since_epoch % 1000 < 0 ? since_epoch % 1000 + 1000 : since_epoch % 1000;
  std::time_t seconds = (since_epoch - ms) / 1000;
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(text) + "." + std::to_string(1000 + ms).substr(1) + "Z";
}

int job_command(const Args& args, JobSource& source) {
  if (args.positional.size() != 1) throw std::invalid_argument("job needs exactly one ID");
  JobInfo info = source.get(args.positional.front());
  if (args.has("--json")) {
    RawPayloads payloads;
    std::printf("%s\n", payloads.dump(to_json(info, payloads)).c_str());
    return 0;
  }
  auto line = [](const char* label, const std::string& value) {
    if (!value.empty()) std::printf("%-12s %s\n", label, value.c_str());
  };
  auto time = [](const std::optional<SystemTime>& t) { return t ? format_time(*t) : std::string(); };
  line("id", info.id);
  line("queue", info.queue);
  line("state", job_state_name(info.state));
  line("attempts", std::to_string(info.attempts) +
                       (info.max_attempts ? " of " + std::to_string(info.max_attempts)
                                          : " (of the pool's retry.max_attempts)"));
  line("priority", std::to_string(info.priority));
  line("unique_key", info.unique_key);
  line("last_error", info.last_error);
  line("locked_by", info.locked_by);
  line("created_at", format_time(info.created_at));
  line("run_at", format_time(info.run_at));
  line("started_at", time(info.started_at));
  line("finished_at", time(info.finished_at));
  line("lease_until", time(info.lease_until));
  line("payload", info.payload);
  return 0;
}

int jobs_command(const Args& args, JobSource& source) {
  JobFilter filter;
  filter.queue = args.get("--queue").value_or("");
  // --queue='' (a variable left empty) would list every queue's jobs, as if not given.
  if (args.get("--queue")) require_queue_name(filter.queue, "--queue");
  if (auto state = args.get("--state")) {
    filter.state = job_state_from_name(*state);
    if (!filter.state)
      throw std::invalid_argument("--state '" + *state + "' is not one of queued, running, done, retry, dead");
  }
  if (auto limit = args.get("--limit")) {
    // Digits only: stoul took "-3" as 2^64 - 3 (everything, or a database error).
    unsigned long value = 0;
    auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), value);
    if (limit->empty() || ec != std::errc() || end != limit->data() + limit->size() || value == 0 ||
        value > 1000000)
      throw std::invalid_argument("--limit must be a number from 1 to 1000000 (got '" + *limit + "')");
    filter.limit = value;
  }
  // One more than asked: whether there are more is worth a line, not a silent cut.
  size_t wanted = filter.limit;
  filter.limit = wanted + 1;
  auto jobs = source.list(filter);
  if (jobs.size() > wanted) {
    jobs.resize(wanted);
    std::fprintf(stderr,
                 "preforkctl: the first %zu job(s) by id, and there are more: raise --limit, or narrow "
                 "with --state and --queue\n",
                 wanted);
  }
  if (args.has("--json")) {
    RawPayloads payloads;
    nlohmann::json list = nlohmann::json::array();
    for (const auto& info : jobs) list.push_back(to_json(info, payloads));
    std::printf("%s\n", payloads.dump(list).c_str());
    return 0;
  }
  std::printf("%-10s %-16s %-8s %-8s %s\n", "ID", "QUEUE", "STATE", "ATTEMPTS", "LAST ERROR");
  for (const auto& info : jobs)
    std::printf("%-10s %-16s %-8s %-8d %s\n", info.id.c_str(), info.queue.c_str(),
                job_state_name(info.state), info.attempts, info.last_error.c_str());
  return 0;
}

int retry_command(const Args& args, JobSource& source) {
  if (args.positional.size() != 1) throw std::invalid_argument("retry needs exactly one ID");
  source.retry_now(args.positional.front());
  std::printf("job %s queued again\n", args.positional.front().c_str());
  return 0;
}

int stats_command(const Args& args, JobSource& source) {
  auto stats = source.stats();
  if (args.has("--json")) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& q : stats)
      out[q.queue] = {{"queued", q.queued}, {"running", q.running}, {"retry", q.retry},
                      {"done", q.done}, {"dead", q.dead}};
    print_json(out);
    return 0;
  }
  std::printf("%-20s %8s %8s %8s %8s %8s\n", "QUEUE", "QUEUED", "RUNNING", "RETRY", "DONE", "DEAD");
  for (const auto& q : stats)
    std::printf("%-20s %8lld %8lld %8lld %8lld %8lld\n", q.queue.c_str(), (long long)q.queued,
                (long long)q.running, (long long)q.retry, (long long)q.done, (long long)q.dead);
  return 0;
}

int migrate_command(const Args& args, JobSource& source) {
  // Opening a source creates its schema (under the backend's own lock); nothing more.
  std::printf("schema ready\n");
  return 0;
}

}  // namespace preforkd::ctl
