// Opens each source a jobs pool uses once, in the supervisor, before any child is
// forked (start and reload), so a database that cannot be used is reported up front.
// The connections are closed again: children open their own after fork.
#pragma once

#include <string>
#include <vector>

#include "preforkd/config.hpp"

namespace preforkd {

// One "source 'NAME': why" per source that cannot be opened.
std::vector<std::string> check_sources(const Config& config);

// Whether check_sources has anything to open: a jobs pool uses a source.
bool has_sources_to_check(const Config& config);

}  // namespace preforkd
