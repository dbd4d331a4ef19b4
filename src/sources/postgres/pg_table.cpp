// Names derived from the job table's schema and name (see pg_table.hpp).
#include "sources/postgres/pg_table.hpp"

#include <cstdio>

namespace preforkd::postgres {
namespace {

uint64_t fnv1a(const std::string& text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace

bool is_valid_identifier(const std::string& name, size_t max_length) {
  if (name.empty() || name.size() > max_length) return false;
  auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (!letter(name[0])) return false;
  for (char c : name)
    if (!letter(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

std::string TableName::qualified() const { return quote(schema) + "." + quote(table); }

std::string TableName::channel() const {
  std::string readable = "preforkd." + schema + "." + table;
  if (readable.size() <= 63) return readable;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(schema + "." + table)));
  return "preforkd." + table.substr(0, 36) + "." + hex;
}

int64_t TableName::migration_lock_key() const {
  return static_cast<int64_t>(fnv1a("preforkd migrate " + schema + "." + table));
}

}  // namespace preforkd::postgres
