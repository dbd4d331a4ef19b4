// Safe parsing of JSON from outside (see json_text.hpp).
#include "util/json_text.hpp"

namespace preforkd {
namespace {

// The deepest nesting of arrays and objects, strings skipped; stops counting past `limit`.
size_t nesting_depth(std::string_view text, size_t limit) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) break;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

nlohmann::json parse_outside_json(std::string_view text, std::string* why) {
  // The parser stops at a NUL as at the end: '{"a":1}\0garbage' passed, and what
  // followed the NUL travelled on to handlers.
  if (auto nul = text.find('\0'); nul != std::string_view::npos) {
    if (why) *why = "a NUL byte at offset " + std::to_string(nul);
    return nlohmann::json::value_t::discarded;
  }
  if (nesting_depth(text, max_json_depth) > max_json_depth) {
    if (why) *why = "nested deeper than " + std::to_string(max_json_depth) + " levels";
    return nlohmann::json::value_t::discarded;
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range: 1e999
    if (why) {
      std::string what = e.what();
      if (auto bracket = what.find("] "); bracket != std::string::npos) what.erase(0, bracket + 2);
      if (what.rfind("parse error", 0) == 0)
        if (auto colon = what.find(": "); colon != std::string::npos) what.erase(0, colon + 2);
      *why = what;
    }
    return nlohmann::json::value_t::discarded;
  }
}

}  // namespace preforkd
