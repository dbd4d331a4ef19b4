// The job table's identity: schema and table names (validated, quoted), and what is
// derived from them: index names, the NOTIFY channel and the migration's advisory lock.
#pragma once

#include <cstdint>
#include <string>

namespace preforkd::postgres {

// [A-Za-z_][A-Za-z0-9_]* of at most `max_length` characters.
bool is_valid_identifier(const std::string& name, size_t max_length);
// Index names append up to 9 characters to the table's name; PostgreSQL keeps 63.
constexpr size_t max_table_name = 48;
constexpr size_t max_schema_name = 63;

struct TableName {
  std::string schema = "public";
  std::string table = "preforkd_jobs";

  // "schema"."table"
  std::string qualified() const;
  // "schema"."table_suffix" ... an index of the table is named table_suffix
  std::string index(const std::string& suffix) const { return quote(table + "_" + suffix); }
  // The LISTEN/NOTIFY channel: readable when it fits PostgreSQL's 63 bytes.
  std::string channel() const;
  // Key of the advisory lock that serialises migrations of this table.
  int64_t migration_lock_key() const;

  static std::string quote(const std::string& identifier) { return "\"" + identifier + "\""; }
};

}  // namespace preforkd::postgres
