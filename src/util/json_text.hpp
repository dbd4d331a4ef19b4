// JSON text from outside preforkd (a payload, a handler's answer, a Resque client's job),
// parsed safely. nlohmann's parser is iterative, but dump() recurses once per level: a
// value nested a few hundred thousand levels deep overflowed the stack wherever it was
// written out again (a worker's SIGSEGV, preforkctl's). Such text is refused unparsed.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace preforkd {

constexpr size_t max_json_depth = 512;

// The value, or a discarded one (is_discarded()) when `text` is not JSON (including a
// number too large for a double) or nests deeper than max_json_depth; `why`, if given,
// then says which, without nlohmann's "[json.exception...]" prefix.
nlohmann::json parse_outside_json(std::string_view text, std::string* why = nullptr);

// `text` with each byte that is no part of valid UTF-8 replaced by U+FFFD (JSON text
// must be UTF-8; nlohmann refuses the whole text for one stray byte).
std::string with_valid_utf8(std::string_view text);

// `value` as JSON text (`indent` as nlohmann's dump), a byte that is not UTF-8 in one of
// its strings written as U+FFFD: nlohmann's default throws, and took down whatever wrote
// out a Resque client's job, a queue name or a handler's answer.
std::string json_text(const nlohmann::json& value, int indent = -1);

}  // namespace preforkd
