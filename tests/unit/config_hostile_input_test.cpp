// Config files written to break the loader (found by fuzzing): each is refused with its
// FILE:LINE:COL, where before it crashed the loader, was silently cut short or ignored,
// or printed what the terminal would take as commands.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config_file_fixture.hpp"
#include "preforkd/config.hpp"

namespace {

std::string repeated(char c, size_t n) { return std::string(n, c); }

}  // namespace

// std::regex_match recursed once per character: a name of 30,000 overflowed the stack
// (SIGSEGV), at --check and in a running supervisor's reload.
TEST_F(ConfigFile, AVeryLongPoolSourceOrQueueNameIsRefusedNotACrash) {
  std::string name = repeated('a', 100000);
  auto problems = problems_of("sources:\n  ? " + name + "\n  : { type: sqlite }\n"
                              "pools:\n  ? " + name + "\n  : { command: [/bin/true] }\n"
                              "  w: { handler: { exec: [/bin/true] }, queues: [" + name + "], source: x }\n");
  std::string shown = repeated('a', 40) + "...' is 100000 characters long: at most 200";
  ASSERT_EQ(problems.size(), 4u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(2, 5, "source name '" + shown));
  EXPECT_EQ(problems[1], at(5, 5, "pool name '" + shown));
  EXPECT_EQ(problems[2], at(7, 49, "pools.w.queues: queue name '" + shown));
  EXPECT_NE(problems[3].find("no source named 'x'"), std::string::npos) << problems[3];
  // 200 is still a name.
  EXPECT_TRUE(problems_of("pools:\n  " + repeated('b', 200) + ": { command: [/bin/true] }\n").empty());
}

// The file held no NUL byte, the value did: argv and the environment ended there
// (`/bin/sleep 1000` ran, `SECRET=abc`), and --check said ok.
TEST_F(ConfigFile, ANulWrittenAsAnEscapeIsRefusedWhereverItIs) {
  auto problems = problems_of("pidfile: \"p\\u0000.pid\"\n"
                              "pools:\n"
                              "  s:\n"
                              "    command: [\"/bin/sleep\", \"1000\\x00; rm -rf /\"]\n"
                              "    env: { SECRET: \"abc\\0def\", \"K\\0\": v }\n");
  ASSERT_EQ(problems.size(), 4u) << ::testing::PrintToString(problems);
  const std::string why = "': the value would end there; remove it";
  EXPECT_EQ(problems[0], at(1, 10, "a NUL character (an escape such as \\0 or \\x00) in 'p\\x00.pid" + why));
  EXPECT_EQ(problems[1], at(4, 29, "a NUL character (an escape such as \\0 or \\x00) in '1000\\x00; rm -rf /" + why));
  EXPECT_EQ(problems[2], at(5, 20, "a NUL character (an escape such as \\0 or \\x00) in 'abc\\x00def" + why));
  EXPECT_EQ(problems[3], at(5, 32, "a NUL character (an escape such as \\0 or \\x00) in 'K\\x00" + why));
}

// Duplicate keys were found by their spelling only: `HUP: TERM` was silently dropped.
TEST_F(ConfigFile, OneSignalMappedTwiceUnderTwoSpellingsIsRefused) {
  auto problems = problems_of("pools:\n  a:\n    command: [/bin/true]\n"
                              "    signals: { HUP: TERM, SIGHUP: QUIT, hup: INT, USR1: QUIT }\n");
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(4, 27, "pools.a.signals: 'SIGHUP' is HUP again (first as 'HUP' at line 4); "
                                   "keep one of them"));
  EXPECT_EQ(problems[1], at(4, 41, "pools.a.signals: 'hup' is HUP again (first as 'HUP' at line 4); "
                                   "keep one of them"));
}

// A message is one line: a value's line break, escape sequence or invisible byte is
// shown as an escape (`did you mean 'graceful_timeout'?` of 'graceful\x01_timeout').
TEST_F(ConfigFile, ControlCharactersInAValueAreShownAsEscapes) {
  auto problems = problems_of("pools:\n  a:\n    command: [/bin/true]\n"
                              "    workers: \"\\e[2J\\e[31mfine\\nline\"\n"
                              "    \"graceful\\x01_timeout\": 1s\n");
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(4, 14, "pools.a.workers must be a non-negative integer (got \\x1b[2J\\x1b[31mfine\\nline)"));
  EXPECT_EQ(problems[1], at(5, 5, "unknown key 'graceful\\x01_timeout' in pools.a (did you mean 'graceful_timeout'?)"));
}

// The paths differ; the file is one: the log was appended to the config.
TEST_F(ConfigFile, ALogFileThatIsAHardLinkToTheConfigIsRefused) {
  std::ofstream(path_) << "log: { file: link.yaml }\npools:\n  a: { command: [/bin/true] }\n";
  std::filesystem::create_hard_link(path_, dir_ / "link.yaml");
  try {
    preforkd::load_config(path_);
    FAIL() << "accepted";
  } catch (const preforkd::ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 1u) << ::testing::PrintToString(e.problems());
    EXPECT_EQ(e.problems()[0], at(1, 14, "log.file: '" + (dir_ / "link.yaml").string() +
                                              "' is the config file itself; writing there would destroy it: "
                                              "choose another path"));
  }
}

TEST_F(ConfigFile, Utf16CarriageReturnOnlyAndOverlongKeysAreNamedForWhatTheyAre) {
  auto utf16 = problems_of(std::string("\xFF\xFEp\0o\0", 6));
  ASSERT_EQ(utf16.size(), 1u);
  EXPECT_EQ(utf16[0], path_ + ": is UTF-16 text (it starts with a UTF-16 byte order mark): save it as UTF-8");
  auto cr_only = problems_of("pools:\r  a:\r    command: [/bin/true]\r");
  ASSERT_EQ(cr_only.size(), 1u);
  EXPECT_NE(cr_only[0].find("the file's lines end in CR alone"), std::string::npos) << cr_only[0];
  auto long_key = problems_of("pools:\n  " + std::string(2000, 'k') + ": { command: [/bin/true] }\n");
  ASSERT_EQ(long_key.size(), 1u);
  EXPECT_EQ(long_key[0], at(2, 2003, "YAML syntax error: illegal map value (the key before this ':' is longer "
                                     "than the 1024 characters YAML allows a key: shorten it)"));
  auto node = problems_of("node: \"web\\n1\"\npools:\n  a: { command: [/bin/true] }\n");
  ASSERT_EQ(node.size(), 1u);
  EXPECT_EQ(node[0], at(1, 7, "node: 'web\\n1' must be a non-empty name without ':', spaces or control characters"));
}

// Each reader saw `<<` as its own kind of key ("pool name '<<' may only use...", "env.<<
// must be a string" at the anchor's line), not as the merge key it is.
TEST_F(ConfigFile, AMergeKeyIsNamedWhereItIs) {
  auto problems = problems_of("defaults: &d { A: x }\n"
                              "pools:\n"
                              "  <<: { a: { command: [/bin/true] } }\n"
                              "  b:\n    command: [/bin/true]\n    env:\n      <<: *d\n");
  const std::string what = "a merge key ('<<: *alias', a YAML 1.1 extension) is not supported: "
                           "repeat the keys, or alias whole pools (b: *a)";
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(3, 3, what));
  EXPECT_EQ(problems[1], at(7, 7, what));
  // Quoted, it is a key like any other.
  auto quoted = problems_of("pools:\n  a:\n    command: [/bin/true]\n    env: { '<<': x }\n");
  EXPECT_TRUE(quoted.empty()) << ::testing::PrintToString(quoted);
}

TEST_F(ConfigFile, ATagThatWouldBeIgnoredIsRefused) {
  auto problems = problems_of("pools:\n  a:\n    command: [/bin/true]\n"
                              "    workers: !custom 3\n"
                              "    env: { A: !!binary aGVsbG8=, B: !!str 1, C: !!int 2 }\n");
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], at(4, 14, "the YAML tag '!custom' is not supported (preforkd would read the value as if "
                                   "it were not there): remove it"));
  EXPECT_EQ(problems[1], at(5, 15, "the YAML tag 'tag:yaml.org,2002:binary' is not supported (preforkd would read "
                                   "the value as if it were not there): remove it"));
}
