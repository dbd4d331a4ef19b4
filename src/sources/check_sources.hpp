// Opens each source a jobs pool uses once, in the supervisor, before any child is
// forked (start and reload), so a database that cannot be used is reported up front.
// The connections are closed again: children open their own after fork.
#pragma once

#include <string>
#include <vector>

#include "preforkd/config.hpp"
#include "util/credentials.hpp"

namespace preforkd {

// One "source 'NAME': why" per source that cannot be opened.
std::vector<std::string> check_sources(const Config& config);

// Whether check_sources has anything to open: a jobs pool uses a source.
bool has_sources_to_check(const Config& config);

// For a tool running as root (preforkctl): opens `source` once as the user of the first
// jobs pool on it that has `user:`/`group:`, as that pool's workers will, so that a
// database this open creates belongs to them, not to root (who can write it anyway).
// "" when it opened, when no pool on it has a user, or when that user does not exist
// on this host; else why it could not.
std::string open_first_as_pools_user(const Config& config, const std::string& source);

// The user and group of the first jobs pool on `source` that has `user:`/`group:` and
// whose user exists on this host; nullopt when there is none.
struct PoolsIdentity {
  Credentials credentials;
  std::string name;  // "user 'NAME'" or "group 'NAME'", for messages
};
std::optional<PoolsIdentity> first_pools_identity(const Config& config, const std::string& source);

}  // namespace preforkd
