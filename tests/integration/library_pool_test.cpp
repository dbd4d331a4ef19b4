// Library pools: how preforkd takes the ways a worker function may end.
#include <gtest/gtest.h>

#include "harness/harness.hpp"

using namespace harness;

namespace {

// One pool per function, each replaced only after a long err_respawn_interval.
std::string pools_of(std::initializer_list<const char*> functions) {
  std::string text = "pools:\n";
  for (const char* function : functions)
    text += std::string("  ") + function + ":\n    function: " + function +
            "\n    workers: 1\n    err_respawn_interval: 30s\n";
  return text;
}

}  // namespace

// Found by a probe: `return 256;` became exit status 0, a clean end replaced at once,
// and `throw 42;` ended the child by std::terminate (ABRT) with no word of its pool.
TEST(LibraryPool, AReturnNoExitStatusHoldsAndAThrowOfAnyTypeAreFailures) {
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");
  write_file(config, pools_of({"return_256", "throw_int"}));
  Daemon daemon(config, {}, {}, test_inprocess_bin());
  EXPECT_TRUE(daemon.wait_output("respawn pool=return_256 in 30000ms")) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("respawn pool=throw_int in 30000ms")) << daemon.output();
  EXPECT_NE(daemon.output().find("worker function threw something that is not a std::exception"),
            std::string::npos) << daemon.output();
  EXPECT_NE(daemon.output().find("exit status 255"), std::string::npos) << daemon.output();
  EXPECT_NE(daemon.output().find("exit status 70"), std::string::npos) << daemon.output();
  EXPECT_EQ(daemon.output().find("killed by signal"), std::string::npos) << daemon.output();
  daemon.signal(SIGTERM);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0) << daemon.output();
}

// Found by a probe: the child ends with _exit, and what it had printed with stdio to a
// stdout that is a file (fully buffered) was lost.
TEST(LibraryPool, WhatAFunctionPrintedIsWrittenWhenItReturns) {
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");
  write_file(config, "pools:\n  p:\n    function: print_and_return\n    workers: 2\n");
  Daemon daemon(config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  daemon.signal(SIGQUIT);
  ASSERT_EQ(exit_code(daemon.wait_exit()), 0) << daemon.output();
  EXPECT_EQ(daemon.count_output("printed by pid"), 2u) << daemon.output();
}
