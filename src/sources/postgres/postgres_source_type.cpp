// The `type: postgres` entry of the source registry: its settings, how each is checked,
// and how a worker opens it.
#include <libpq-fe.h>

#include "preforkd/config.hpp"
#include "sources/source_settings.hpp"
#include "sources/postgres/pg_table.hpp"
#include "sources/postgres/postgres_source.hpp"

namespace preforkd::postgres {
namespace {

// libpq's parse errors may quote the whole string, password included.
std::string check_url(const std::string& url) {
  if (url.empty()) return "must not be empty: a libpq conninfo (host=... dbname=...) or a postgresql:// URL";
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options) {
    PQconninfoFree(options);
    return "";
  }
  std::string message = error ? error : "cannot be parsed";
  if (error) PQfreemem(error);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  for (size_t at; (at = message.find(url)) != std::string::npos;) message.replace(at, url.size(), "<url>");
  return "is not a libpq conninfo or postgresql:// URL: " + message;
}

std::string check_setting(const std::string& key, const std::string& value) {
  if (key == "url") return check_url(value);
  if (key == "prefetch") return check_prefetch(value);
  if (key == "schema" || key == "table") {
    size_t max = key == "schema" ? max_schema_name : max_table_name;
    if (!is_valid_identifier(value, max))
      return "'" + value + "' is not a plain identifier: use letters, digits and '_', not starting "
             "with a digit, at most " + std::to_string(max) + " characters";
    return "";
  }
  try {
    auto d = parse_duration(value);
    if (key == "lease" && d < std::chrono::seconds(1)) return "must be at least 1s (got " + value + ")";
    return "";
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
}

PostgresSettings settings_of(const SourceConfig& config) {
  PostgresSettings s;
  auto get = [&](const char* key) -> const std::string* {
    auto it = config.settings.find(key);
    return it == config.settings.end() ? nullptr : &it->second;
  };
  if (auto v = get("url")) s.url = *v;
  if (s.url.empty())
    throw SourceError("postgres source '" + config.name + "' needs 'url:' (a libpq conninfo or postgresql:// URL)");
  if (auto v = get("schema")) s.schema = *v;
  if (auto v = get("table")) s.table = *v;
  if (auto v = get("lease")) s.lease = parse_duration(*v);
  if (auto v = get("keep_done")) s.keep_done = parse_duration(*v);
  if (auto v = get("prefetch")) s.prefetch = std::stoi(*v);
  return s;
}

JobSourceType postgres_source_type() {
  JobSourceType type;
  type.keys = {"url", "schema", "table", "lease", "keep_done", "prefetch"};
  type.required = {{"url", "a libpq conninfo (host=... dbname=...) or a postgresql:// URL"}};
  type.check = check_setting;
  type.open = [](const SourceConfig& config, const std::string& worker_id) {
    return open_postgres_source(settings_of(config), worker_id);
  };
  return type;
}

PREFORKD_REGISTER_JOB_SOURCE("postgres", postgres_source_type)

}  // namespace
}  // namespace preforkd::postgres
