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

std::string with_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
    unsigned char c = byte(0);
    size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) valid = (byte(k) & 0xC0) == 0x80;
    // No overlong forms, no UTF-16 surrogates, nothing past U+10FFFF.
    if (valid && length == 2) valid = c >= 0xC2;
    if (valid && length == 3) valid = !(c == 0xE0 && byte(1) < 0xA0) && !(c == 0xED && byte(1) >= 0xA0);
    if (valid && length == 4) valid = c <= 0xF4 && !(c == 0xF0 && byte(1) < 0x90) && !(c == 0xF4 && byte(1) >= 0x90);
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      i += 1;
    }
  }
  return out;
}

std::string json_text(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace preforkd
