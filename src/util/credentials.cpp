#include "util/credentials.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <stdexcept>

namespace preforkd {

std::optional<Credentials> resolve_credentials(const std::string& user, const std::string& group) {
  if (user.empty() && group.empty()) return std::nullopt;
  // user/group only take effect for a root supervisor (README); any other keeps its own.
  if (::geteuid() != 0) return std::nullopt;
  Credentials credentials{::getuid(), ::getgid(), {}};
  if (!user.empty()) {
    passwd* pw = ::getpwnam(user.c_str());
    if (!pw) throw std::runtime_error("user '" + user + "' does not exist");
    credentials.uid = pw->pw_uid;
    credentials.gid = pw->pw_gid;
  }
  if (!group.empty()) {
    struct group* gr = ::getgrnam(group.c_str());
    if (!gr) throw std::runtime_error("group '" + group + "' does not exist");
    credentials.gid = gr->gr_gid;
  }
  if (user.empty()) {
    credentials.groups = {credentials.gid};
    return credentials;
  }
  int count = 64;
  credentials.groups.resize(count);
  if (::getgrouplist(user.c_str(), credentials.gid, credentials.groups.data(), &count) < 0) {
    credentials.groups.resize(count);
    ::getgrouplist(user.c_str(), credentials.gid, credentials.groups.data(), &count);
  }
  credentials.groups.resize(count);
  return credentials;
}

std::string ignored_credentials_note(const std::string& pool, const std::string& user,
                                     const std::string& group) {
  if (::geteuid() == 0 || (user.empty() && group.empty())) return "";
  const passwd* pw = user.empty() ? nullptr : ::getpwnam(user.c_str());
  const struct group* gr = group.empty() ? nullptr : ::getgrnam(group.c_str());
  bool same_user = user.empty() || (pw && pw->pw_uid == ::geteuid());
  bool same_group = group.empty() || (gr && gr->gr_gid == ::getegid());
  if (same_user && same_group) return "";
  std::string asked = user.empty() ? "group " + group : group.empty() ? "user " + user
                                                                       : "user " + user + " group " + group;
  return "pool=" + pool + ": " + asked + " is ignored: preforkd is not root (it runs as uid " +
         std::to_string(::geteuid()) + " gid " + std::to_string(::getegid()) +
         "), so its children run as it does; start preforkd as root to switch users";
}

bool switch_credentials(const Credentials& credentials) {
  return ::setgroups(credentials.groups.size(), credentials.groups.data()) == 0 &&
         ::setgid(credentials.gid) == 0 && ::setuid(credentials.uid) == 0;
}

}  // namespace preforkd
