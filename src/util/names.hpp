// Names an operator gives pools, sources and queues: checked by hand, character by
// character. std::regex_match recursed once per character and overflowed the stack on
// a name of some 30,000 characters, which took a running supervisor down on HUP.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace preforkd {

// Pool, source and queue names appear in log lines, process titles and environment
// variables: a longer one is a mistake, not a name.
inline constexpr std::size_t max_name_length = 200;

// Letters, digits, '_', '.', '-' and the characters of `extra`; 1 to max_name_length.
inline bool is_plain_name(std::string_view name, std::string_view extra = "") {
  if (name.empty() || name.size() > max_name_length) return false;
  for (char c : name) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 c == '.' || c == '-' || extra.find(c) != std::string_view::npos;
    if (!plain) return false;
  }
  return true;
}

// Why `name` is not plain, for a message about the `what` ("pool name"): the name shown
// whole when short, else its start and its length.
inline std::string why_not_plain(std::string_view what, std::string_view name, std::string_view extra = "") {
  std::string allowed = "letters, digits, '_', '.'";
  for (char c : extra) allowed += std::string(", '") + c + "'";
  allowed += ", '-'";
  if (name.size() > max_name_length)
    return std::string(what) + " '" + std::string(name.substr(0, 40)) + "...' is " + std::to_string(name.size()) +
           " characters long: at most " + std::to_string(max_name_length);
  return std::string(what) + " '" + std::string(name) + "' may only use " + allowed;
}

}  // namespace preforkd
