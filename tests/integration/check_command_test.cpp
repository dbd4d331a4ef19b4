// `preforkd --check` and a refused start, through the real binary.
#include <gtest/gtest.h>

#include "harness/harness.hpp"

using namespace harness;

TEST(CheckCommand, ValidFileExitsZero) {
  auto result = run({preforkd_bin(), "-c", std::string(PREFORKD_SOURCE_DIR) + "/conf/preforkd.yaml", "--check"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("ok (3 pool(s))"), std::string::npos);
}

TEST(CheckCommand, InvalidFileListsEveryProblemAndExitsOne) {
  TempDir dir;
  std::string config = dir.file("bad.yaml");
  write_file(config, "pools:\n  a:\n    command: [/bin/true]\n    workers: -1\n    colour: red\n");
  auto result = run({preforkd_bin(), "--check", "-c", config});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(config + ":4:14: pools.a.workers must be a non-negative integer (got -1)"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":5:5: unknown key 'colour' in pools.a"), std::string::npos);
}

TEST(CheckCommand, APoolNameGivenTwiceIsAnError) {
  TempDir dir;
  std::string config = dir.file("twice.yaml");
  write_file(config, "pools:\n  a: { command: [/bin/sleep, \"1000\"], workers: 1 }\n"
                     "  a: { command: [/bin/sleep, \"2000\"], workers: 3 }\n");
  auto result = run({preforkd_bin(), "--check", "-c", config});
  EXPECT_EQ(result.exit_code, 1) << result.out;
  EXPECT_NE(result.err.find(config + ":3:3: duplicate key 'a' (first at line 2, column 3)"),
            std::string::npos) << result.err;
}

TEST(CheckCommand, StartIsRefusedWithTheSameMessages) {
  TempDir dir;
  std::string config = dir.file("bad.yaml");
  write_file(config, "pools:\n  a:\n    command: [/no/such/program]\n");
  auto result = run({preforkd_bin(), "-c", config});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(config + ":3:15: pools.a.command: '/no/such/program' not found"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find("refusing to start"), std::string::npos);
}

TEST(CheckCommand, UsageErrorsExitTwo) {
  EXPECT_EQ(run({preforkd_bin()}).exit_code, 2);
  EXPECT_EQ(run({preforkd_bin(), "--bogus"}).exit_code, 2);
  EXPECT_EQ(run({preforkd_bin(), "--version"}).exit_code, 0);
}
