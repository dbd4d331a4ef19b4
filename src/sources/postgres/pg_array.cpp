// Array literals for statement parameters (see pg_array.hpp).
#include "sources/postgres/pg_array.hpp"

namespace preforkd::postgres {
namespace {

void append_element(std::string& out, const std::string& item) {
  // Always quoted: then only '"' and '\' need escaping, whatever the text holds.
  out += '"';
  for (char c : item) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

std::string array_literal(const std::vector<Param>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    if (items[i]) append_element(out, *items[i]);
    else out += "NULL";
  }
  return out + "}";
}

std::string array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    append_element(out, items[i]);
  }
  return out + "}";
}

}  // namespace preforkd::postgres
