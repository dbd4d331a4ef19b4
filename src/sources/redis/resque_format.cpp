// Resque wire formats (see resque_format.hpp).
#include "sources/redis/resque_format.hpp"

#include <ctime>
#include <nlohmann/json.hpp>

#include "util/json_text.hpp"

namespace preforkd::redis {

std::string resque_body(const std::string& payload) {
  auto parsed = parse_outside_json(payload);
  if (parsed.is_object() && parsed.contains("class") && parsed["class"].is_string()) return payload;
  return nlohmann::json{{"class", "Preforkd::Job"}, {"args", nlohmann::json::array({parsed})}}.dump();
}

namespace {

constexpr std::string_view wrapper_class = "\"class\":\"Preforkd::Job\"";

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
