// Up-front source check (see check_sources.hpp).
#include "sources/check_sources.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "util/credentials.hpp"
#include "util/run_as.hpp"

namespace preforkd {

namespace {

using Identity = std::pair<std::string, std::string>;  // a pool's (user, group)

// Each source a jobs pool uses, with the pools' identities: in the pools' order, those
// with a user or group first, the supervisor's own (no user, no group) last. The first
// open may create the database, and a database the supervisor (root) made is one the
// other pools' users cannot write; one a pool's user made, root can.
std::map<std::string, std::vector<Identity>> used_sources(const Config& config) {
  std::map<std::string, std::vector<Identity>> used;
  for (const auto& pool : config.pools) {
    if (pool.kind != PoolKind::jobs || !config.sources.count(pool.jobs.source)) continue;
    auto& identities = used[pool.jobs.source];
    Identity identity{pool.user, pool.group};
    if (std::find(identities.begin(), identities.end(), identity) == identities.end())
      identities.push_back(identity);
  }
  for (auto& [source, identities] : used)
    std::stable_partition(identities.begin(), identities.end(),
                          [](const Identity& identity) { return !identity.first.empty() || !identity.second.empty(); });
  return used;
}

// "" when it opens, else why not.
std::string try_open(const SourceConfig& source) {
  try {
    open_job_source(source);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Opens the source in a child running as `credentials`, as a worker of the pool would:
// a database its user cannot write, or a directory it cannot create files in, is found
// now, and a database made by this first open belongs to that user, not to root.
std::string try_open_as(const SourceConfig& source, const Credentials& credentials) {
  return run_as(credentials, [&] { return try_open(source); });
}

}  // namespace

bool has_sources_to_check(const Config& config) { return !used_sources(config).empty(); }

std::optional<PoolsIdentity> first_pools_identity(const Config& config, const std::string& source) {
  auto used = used_sources(config);
  auto it = used.find(source);
  if (it == used.end()) return std::nullopt;
  for (const auto& [user, group] : it->second) {
    std::optional<Credentials> credentials;
    try {
      credentials = resolve_credentials(user, group);
    } catch (const std::exception&) {
      continue;  // not on this host: preforkctl may run where the pools do not
    }
    if (!credentials) continue;
    return PoolsIdentity{*credentials, user.empty() ? "group '" + group + "'" : "user '" + user + "'"};
  }
  return std::nullopt;
}

std::string open_first_as_pools_user(const Config& config, const std::string& source) {
  auto identity = first_pools_identity(config, source);
  if (!identity) return "";
  std::string why = try_open_as(config.sources.at(source), identity->credentials);
  return why.empty() ? "" : "as " + identity->name + " (its workers run so): " + why;
}

std::vector<std::string> check_sources(const Config& config) {
  std::vector<std::string> problems;
  for (const auto& [name, identities] : used_sources(config)) {
    const SourceConfig& source = config.sources.at(name);
    auto problem = [&](const std::string& why) {
      problems.push_back(source.defined_at + ": source '" + name + "': " + why);
    };
    bool opened_as_self = false;
    for (const auto& [user, group] : identities) {
      std::optional<Credentials> credentials;
      try {
        credentials = resolve_credentials(user, group);
      } catch (const std::exception& e) {
        problem(e.what());
        continue;
      }
      if (!credentials) {
        if (std::exchange(opened_as_self, true)) continue;
        if (std::string why = try_open(source); !why.empty()) problem(why);
        continue;
      }
      std::string as = user.empty() ? "group '" + group + "'" : "user '" + user + "'";
      if (std::string why = try_open_as(source, *credentials); !why.empty())
        problem("as " + as + " (its workers run so): " + why);
    }
  }
  return problems;
}

}  // namespace preforkd
