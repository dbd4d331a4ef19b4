// The user, group and supplementary groups a pool's processes run with (`user:`,
// `group:`), looked up once and switched to in a child: workers, and the check that
// opens a pool's job source the way its workers will.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace preforkd {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// What `user` and `group` (either may be empty) name, or nullopt when nothing is to be
// switched: both empty, or a supervisor that is not root (which keeps its own).
// Throws std::runtime_error naming a user or group that does not exist.
std::optional<Credentials> resolve_credentials(const std::string& user, const std::string& group);

// For a supervisor that is not root: why `user`/`group` (taken from pool `pool`) will
// not be what its children run as, for a warning; "" when they name this process's own
// uid and gid, or when it is root.
std::string ignored_credentials_note(const std::string& pool, const std::string& user,
                                     const std::string& group);

// setgroups, setgid, setuid, in that order (each needs the privilege the next drops).
// False, with errno set, when one fails. Makes no allocation.
bool switch_credentials(const Credentials& credentials);

}  // namespace preforkd
