// Resque wire formats (see resque_format.hpp).
#include "sources/redis/resque_format.hpp"

#include <ctime>
#include <nlohmann/json.hpp>

#include "util/json_text.hpp"

namespace preforkd::redis {

namespace {

constexpr std::string_view wrapper_class = "\"class\":\"Preforkd::Job\"";
// The wrapper around a payload, written as text around the payload's own text: parsed
// and written out again, the payload lost digits (1.10 became 1.1, an integer beyond 64
// bits a double) and its key order, and the wrapper's two levels took a payload nested
// 511 or 512 deep past the parser's limit.
constexpr std::string_view wrapper_head = "{\"class\":\"Preforkd::Job\",\"args\":[";
constexpr std::string_view wrapper_tail = "]}";
// How earlier versions wrote it (nlohmann's key order).
constexpr std::string_view old_wrapper_head = "{\"args\":[";
constexpr std::string_view old_wrapper_tail = "],\"class\":\"Preforkd::Job\"}";

bool wraps(std::string_view body, std::string_view head, std::string_view tail) {
  return body.size() >= head.size() + tail.size() && body.substr(0, head.size()) == head &&
         body.substr(body.size() - tail.size()) == tail;
}

}  // namespace

std::string resque_body(const std::string& payload) {
  auto parsed = parse_outside_json(payload);
  if (parsed.is_object() && parsed.contains("class") && parsed["class"].is_string()) return payload;
  // Not JSON (a program's own enqueue may pass anything): carried as a JSON string.
  std::string args = parsed.is_discarded() ? json_text(nlohmann::json(payload)) : payload;
  return std::string(wrapper_head) + args + std::string(wrapper_tail);
}

namespace {

std::string without_id(std::string_view stored) {
  // The member is always last and written by preforkd itself: check the exact suffix
  // `"preforkd":{"id":"DIGITS"}}` (plus trailing blanks) rather than parse the job.
  constexpr std::string_view marker = "\"preforkd\":{\"id\":\"";
  size_t end = stored.find_last_not_of(" \t\r\n");
  size_t at = stored.rfind(marker);
  if (end == std::string_view::npos || at == std::string_view::npos) return std::string(stored);
  size_t digits = at + marker.size(), pos = digits;
  while (pos < stored.size() && stored[pos] >= '0' && stored[pos] <= '9') ++pos;
  if (pos == digits || stored.substr(pos, end + 1 - pos) != "\"}}") return std::string(stored);
  size_t cut = at;
  while (cut > 0 && (stored[cut - 1] == ' ' || stored[cut - 1] == '\n')) --cut;
  if (cut > 0 && stored[cut - 1] == ',') --cut;
  return std::string(stored.substr(0, cut)) + "}";
}

}  // namespace

std::string handler_payload(std::string_view stored) {
  std::string body = without_id(stored);
  // A payload preforkctl wrapped for Resque's sake goes to the handler as it was given.
  if (body.find(wrapper_class) == std::string::npos) return body;
  for (auto [head, tail] : {std::pair{wrapper_head, wrapper_tail}, std::pair{old_wrapper_head, old_wrapper_tail}})
    if (wraps(body, head, tail)) {
      std::string inner = body.substr(head.size(), body.size() - head.size() - tail.size());
      // One value, as preforkd wrote it (not `1,2` from a client's args of its own).
      if (!parse_outside_json(inner).is_discarded()) return inner;
    }
  auto job = parse_outside_json(body);
  if (job.is_object() && job.value("class", "") == "Preforkd::Job" && job.contains("args") &&
      job["args"].is_array() && job["args"].size() == 1 && job.size() == 2)
    return job["args"][0].dump();
  return body;
}

std::string resque_failure(std::string_view stored, const std::string& queue,
                           const std::string& worker, const std::string& error,
                           SystemTime failed_at) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(failed_at);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char when[40];
  std::strftime(when, sizeof when, "%Y/%m/%d %H:%M:%S UTC", &tm);
  auto payload = parse_outside_json(without_id(stored));
  nlohmann::json failure = {
      {"failed_at", when},
      {"payload", payload.is_discarded() ? nlohmann::json(std::string(stored)) : payload},
      {"exception", error.rfind("timeout", 0) == 0 ? "Preforkd::Timeout" : "Preforkd::JobFailed"},
      {"error", error},
      {"backtrace", nlohmann::json::array()},
      {"worker", worker + ":" + queue},
      {"queue", queue}};
  return json_text(failure);
}

}  // namespace preforkd::redis
