// preforkd under Debian's daemontools `supervise`: svc -h reloads, svc -t stops it
// (and supervise starts it again), svc -dx takes it down for good.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <regex>

#include "harness/harness.hpp"

using namespace harness;

namespace {

// The pid svstat reports for the service, or 0 when it is down.
pid_t service_pid(const std::string& service) {
  auto result = run({"/usr/bin/svstat", service});
  std::smatch match;
  std::regex up_re("up \\(pid (\\d+)\\)");
  return std::regex_search(result.out, match, up_re) ? std::stoi(match[1]) : 0;
}

}  // namespace

TEST(Daemontools, SvcHupReloadsAndSvcTermStopsPreforkd) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/supervise"))
      << "daemontools is not installed: scripts/setup installs it";
  TempDir dir;
  std::string service = dir.file("service");
  std::filesystem::create_directory(service);
  std::string config = dir.file("preforkd.yaml");
  std::string log = dir.file("preforkd.log");
  write_file(config, "pools:\n" + child_pool("a", {"idle"}, 2));
  // The same shape as init/daemontools/run, with the test's paths.
  write_file(service + "/run", "#!/bin/sh\nexec >>" + log + " 2>&1\nexec " + preforkd_bin() +
                                   " -c " + config + "\n");
  ::chmod((service + "/run").c_str(), 0755);

  Process supervise({"/usr/bin/supervise", service}, dir.file("supervise.out"));
  pid_t first = 0;
  ASSERT_TRUE(wait_until([&] { return (first = service_pid(service)) > 0; }));
  ASSERT_TRUE(wait_until([&] { return read_file(log).find("generation 1 ready") != std::string::npos; }))
      << read_file(log);

  ASSERT_EQ(run({"/usr/bin/svc", "-h", service}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return read_file(log).find("generation 2 ready") != std::string::npos; }))
      << read_file(log);
  EXPECT_EQ(service_pid(service), first);

  ASSERT_EQ(run({"/usr/bin/svc", "-t", service}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return read_file(log).find("TERM received: fast stop") != std::string::npos; }));
  EXPECT_TRUE(wait_until([&] { return read_file(log).find("preforkd stopped") != std::string::npos; }));
  // supervise restarts it: a new pid, and its children come up again.
  pid_t second = 0;
  EXPECT_TRUE(wait_until([&] { return (second = service_pid(service)) > 0 && second != first; }));
  EXPECT_TRUE(wait_until([&] { return children_of(second).size() == 2; }));

  ASSERT_EQ(run({"/usr/bin/svc", "-dx", service}).exit_code, 0);
  EXPECT_TRUE(supervise.wait_exit(15s).has_value());
  EXPECT_TRUE(wait_until([&] { return !pid_alive(second); }));
}
