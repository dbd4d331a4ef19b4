// The handler examples under examples/ and conf/preforkd.yaml work as documented.
#include <gtest/gtest.h>

#include <filesystem>

#include "harness/jobs_harness.hpp"

using namespace harness;

namespace {

std::string example(const std::string& name) {
  return std::string(PREFORKD_SOURCE_DIR) + "/examples/handlers/" + name;
}

struct ExampleCase {
  std::string name;
  std::string handler;
};
void PrintTo(const ExampleCase& c, std::ostream* os) { *os << c.name; }

class ExampleHandler : public ::testing::TestWithParam<ExampleCase> {};

}  // namespace

TEST_P(ExampleHandler, RunsJobsAndReportsFailures) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("ex", GetParam().handler, {"ex"}, 1,
                                              "    retry: { max_attempts: 1 }\n"));
  Daemon daemon(f.config, f.env);
  std::string ok = f.enqueue("ex", R"({"to": "someone@example.org"})");
  std::string failing = f.enqueue("ex", R"({"fail": true})");
  // As deep as preforkctl accepts (512 levels): the request around it adds one.
  std::string deep = "null";
  for (int i = 0; i < 512; ++i) deep = R"({"a": )" + deep + "}";
  std::string nested = f.enqueue("ex", deep);
  ASSERT_TRUE(f.wait_state(ok, "done")) << daemon.output();
  ASSERT_TRUE(f.wait_state(nested, "done")) << daemon.output();
  ASSERT_TRUE(f.wait_state(failing, "dead")) << daemon.output();
  EXPECT_NE(f.job(failing)["last_error"].get<std::string>(), "");
  // What the handler wrote to stderr is in the log, with the pool.
  EXPECT_TRUE(daemon.wait_output("pool=ex")) << daemon.output();
}

INSTANTIATE_TEST_SUITE_P(
    Examples, ExampleHandler,
    ::testing::Values(
        ExampleCase{"exec_sh", "{ exec: " + yaml_list({example("send-mail")}) + " }"},
        ExampleCase{"persistent_perl", "{ persistent: " + yaml_list({"perl", example("worker.pl")}) + " }"},
        ExampleCase{"persistent_python", "{ persistent: " + yaml_list({"python3", example("worker.py")}) + " }"},
        ExampleCase{"persistent_sh", "{ persistent: " + yaml_list({example("worker.sh")}) + " }"}),
    [](const auto& info) { return info.param.name; });

TEST(Examples, TheShippedConfigIsValid) {
  auto result = run({preforkd_bin(), "-c", std::string(PREFORKD_SOURCE_DIR) + "/conf/preforkd.yaml", "--check"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

// Found by a probe: the shipped config's Perl pool named its script as an argument,
// relative to the config, which a child took from preforkd's working directory: every
// job failed unless preforkd was started from inside conf/. Run here, as the README
// runs it, from another directory, on a copy.
TEST(Examples, TheShippedConfigRunsItsJobsWhereverPreforkdIsStartedFrom) {
  JobsFixture f;
  namespace fs = std::filesystem;
  for (const char* dir : {"conf", "examples"})
    fs::copy(fs::path(PREFORKD_SOURCE_DIR) / dir, fs::path(f.dir.path()) / dir, fs::copy_options::recursive);
  f.config = f.dir.file("conf/preforkd.yaml");
  ASSERT_NE(fs::current_path(), fs::path(f.dir.path()));
  Daemon daemon(f.config, f.env);
  std::string report = f.enqueue("reports", R"({"month": 11})");
  std::string mail = f.enqueue("mail", R"({"to": "ann@example.org"})");
  ASSERT_TRUE(f.wait_state(report, "done", 30s)) << daemon.output();
  ASSERT_TRUE(f.wait_state(mail, "done", 30s)) << daemon.output();
  EXPECT_EQ(f.job(report)["attempts"], 1);
}

// Found by a probe: the init files run /usr/local/bin/preforkd, which nothing put there.
TEST(Examples, CmakeInstallPutsTheProgramsWhereTheInitFilesRunThem) {
  TempDir prefix;
  auto install = run({PREFORKD_CMAKE, "--install", PREFORKD_BINARY_DIR, "--prefix", prefix.path()});
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  auto version = run({prefix.file("bin/preforkd"), "--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_EQ(version.out.rfind("preforkd ", 0), 0u) << version.out;
  EXPECT_EQ(run({prefix.file("bin/preforkctl"), "--help"}).exit_code, 0);
  for (const char* file : {"share/doc/preforkd/README.md", "share/doc/preforkd/conf/preforkd.yaml",
                           "share/doc/preforkd/init/systemd/preforkd.service",
                           "share/doc/preforkd/init/daemontools/run"})
    EXPECT_TRUE(std::filesystem::exists(prefix.file(file))) << file;
  // Found by a probe: the example config was installed without the handlers it runs.
  auto check = run({prefix.file("bin/preforkd"), "--check", "-c", prefix.file("share/doc/preforkd/conf/preforkd.yaml")});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  // The unit's paths are the default prefix's.
  std::string unit = read_file(std::string(PREFORKD_SOURCE_DIR) + "/init/systemd/preforkd.service");
  EXPECT_NE(unit.find("ExecStart=/usr/local/bin/preforkd "), std::string::npos);
  EXPECT_NE(unit.find("Documentation=file:///usr/local/share/doc/preforkd/README.md"), std::string::npos);
}

namespace {

std::string consumer_fixture(const std::string& name) {
  return std::string(PREFORKD_SOURCE_DIR) + "/tests/fixtures/cmake_consumer/" + name;
}

}  // namespace

// Found by a probe: an install had no headers, library or CMake package, so a program
// of one's own could only be linked from a build tree. README "Library pools".
TEST(Examples, AProgramOfYourOwnBuildsAgainstAnInstalledPreforkdAndRuns) {
  TempDir prefix, build, dir;
  auto install = run({PREFORKD_CMAKE, "--install", PREFORKD_BINARY_DIR, "--prefix", prefix.path()});
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  auto configure = run({PREFORKD_CMAKE, "-S", consumer_fixture("installed"), "-B", build.path(),
                        "-DCMAKE_PREFIX_PATH=" + prefix.path()},
                       "", {}, 120s);
  ASSERT_EQ(configure.exit_code, 0) << configure.out << configure.err;
  auto compile = run({PREFORKD_CMAKE, "--build", build.path()}, "", {}, 240s);
  ASSERT_EQ(compile.exit_code, 0) << compile.out << compile.err;

  std::string config = dir.file("ticker.yaml");
  write_file(config, "pools:\n  ticks:\n    function: ticker\n    workers: 2\n");
  Daemon daemon(config, {}, {}, build.file("ticker"));
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  daemon.signal(SIGQUIT);
  EXPECT_EQ(exit_code(daemon.wait_exit(15s)), 0) << daemon.output();
}

// Found by a probe: add_subdirectory(preforkd) looked for preforkd's sources in the
// including project (CMAKE_SOURCE_DIR): no sources at all, or that project's src/.
TEST(Examples, AsASubdirectoryPreforkdCompilesItsOwnSourcesAndNotItsTests) {
  TempDir project, build;
  write_file(project.file("CMakeLists.txt"), read_file(consumer_fixture("subdirectory/CMakeLists.txt")));
  std::filesystem::create_directory(project.file("src"));
  write_file(project.file("src/main.cpp"), "int main() { return 0; }\n");
  auto configure = run({PREFORKD_CMAKE, "-S", project.path(), "-B", build.path(),
                        std::string("-DPREFORKD_DIR=") + PREFORKD_SOURCE_DIR,
                        "-DTICKER_SOURCE=" + consumer_fixture("ticker.cpp")},
                       "", {}, 120s);
  EXPECT_EQ(configure.exit_code, 0) << configure.out << configure.err;
}
