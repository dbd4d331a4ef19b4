// Queue semantics of the SQLite source and preforkctl: delayed jobs, unique keys,
// priority, bad input, and databases that cannot be used.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <pwd.h>
#include <sqlite3.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "harness/jobs_harness.hpp"

using namespace harness;

namespace {

std::string one_exec_pool(const std::string& queues_yaml_extra = "") {
  return "pools:\n" + jobs_pool("work", exec_handler(), {"q1", "q2"}, 1, queues_yaml_extra);
}

// The fixture's var/, where the default database lives, owned by `user` and reachable
// by them: what a pool that runs as that user needs.
void give_var_to(const JobsFixture& f, const passwd& user) {
  ASSERT_EQ(::chmod(f.dir.path().c_str(), 0755), 0);
  std::filesystem::create_directories(f.dir.file("var"));
  ASSERT_EQ(::chown(f.dir.file("var").c_str(), user.pw_uid, user.pw_gid), 0);
}

// What a pool running as nobody needs of the fixture: var/ (as give_var_to) and the job
// log its handlers append to.
void give_var_and_job_log_to(const JobsFixture& f, const passwd& user) {
  give_var_to(f, user);
  write_file(f.job_log, "");
  ASSERT_EQ(::chmod(f.job_log.c_str(), 0666), 0);
}

}  // namespace

TEST(Queue, ADelayedJobDoesNotRunBeforeItsTime) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  Daemon daemon(f.config, f.env);
  // Whatever the machine's load: the far one must still wait when the near one is done.
  std::string far = f.enqueue("q1", "{}", {"--at", "2099-01-02T03:04:05Z"});
  std::string id = f.enqueue("q1", "{}", {"--delay", "1500ms"});
  ASSERT_TRUE(f.wait_state(id, "done", 60s)) << daemon.output();
  EXPECT_EQ(f.state(far), "queued");
  auto done = f.job(id);
  EXPECT_GE(done["started_at"].get<std::string>(), done["run_at"].get<std::string>());
  EXPECT_GE(done["run_at"].get<std::string>(), done["created_at"].get<std::string>());
}

TEST(Queue, AtSchedulesForAnAbsoluteTime) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  std::string id = f.enqueue("q1", "{}", {"--at", "2099-01-02T03:04:05Z"});
  EXPECT_EQ(f.job(id)["run_at"], "2099-01-02T03:04:05.000Z");
  auto bad = f.ctl({"enqueue", "q1", "--at", "tomorrow"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--at 'tomorrow' is not a time"), std::string::npos) << bad.err;
  // Past the clock's range it would wrap to a time long gone (due at once), or abort.
  for (std::string late : {"2263-01-01T00:00:00Z", "99999999999", "99999999999999999999"}) {
    auto too_late = f.ctl({"enqueue", "q1", "--at", late});
    EXPECT_EQ(too_late.exit_code, 2) << late << ": " << too_late.err;
    EXPECT_NE(too_late.err.find("--at '" + late + "' is too far ahead"), std::string::npos) << too_late.err;
  }
  EXPECT_EQ(f.stats("q1")["queued"], 1);  // nothing of the refused ones was written
}

// Found by a probe: a payload after a UTF-8 byte order mark was stored with it, and
// `job --json` and a persistent handler's request line were then no JSON; a unique key
// of 2.8 KB or of bytes that are not UTF-8 got PostgreSQL's index error (exit 1).
TEST(Queue, AByteOrderMarkIsDroppedAndAUniqueKeyIsShortUtf8Text) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"q"}, 0));
  auto with_bom = f.ctl({"enqueue", "q", "--payload", "-"}, "\xEF\xBB\xBF{\"a\": 1}\n");
  ASSERT_EQ(with_bom.exit_code, 0) << with_bom.err;
  std::string id = with_bom.out.substr(0, with_bom.out.find('\n'));
  auto shown = f.job(id);
  ASSERT_TRUE(shown.contains("payload")) << shown.dump();
  EXPECT_EQ(shown["payload"], nlohmann::json::parse(R"({"a": 1})")) << shown.dump();

  auto too_long = f.ctl({"enqueue", "q", "--payload", "{}", "--unique", std::string(1001, 'k')});
  EXPECT_EQ(too_long.exit_code, 2);
  EXPECT_NE(too_long.err.find("--unique KEY must be UTF-8 text of at most 1000 bytes (got 1001 bytes)"),
            std::string::npos) << too_long.err;
  auto not_utf8 = f.ctl({"enqueue", "q", "--payload", "{}", "--unique", "\xff"});
  EXPECT_EQ(not_utf8.exit_code, 2);
  EXPECT_NE(not_utf8.err.find("(got 1 bytes, not UTF-8)"), std::string::npos) << not_utf8.err;
  EXPECT_EQ(f.ctl({"enqueue", "q", "--payload", "{}", "--unique", std::string(1000, 'k')}).exit_code, 0);
}

TEST(Queue, AUniqueKeyDedupesWhileTheFirstIsQueued) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  std::string first = f.enqueue("q1", "{}", {"--unique", "user-42"});
  auto second = f.ctl({"enqueue", "q1", "--payload", "{}", "--unique", "user-42"});
  EXPECT_EQ(second.exit_code, 0);
  EXPECT_EQ(second.out, first + "\n");
  EXPECT_NE(second.err.find("already holds unique key 'user-42'"), std::string::npos) << second.err;
  EXPECT_EQ(f.stats("q1")["queued"], 1);

  // Once it is done, the key is free again.
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(f.wait_state(first, "done")) << daemon.output();
  std::string third = f.enqueue("q1", "{}", {"--unique", "user-42"});
  EXPECT_NE(third, first);
}

TEST(Queue, QueuesAreServedInStrictOrderAndPriorityWithinAQueue) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  std::string low_q2 = f.enqueue("q2", "{}", {"--priority", "100"});
  std::string low = f.enqueue("q1", "{}", {"--priority", "-5"});
  std::string mid = f.enqueue("q1", "{}");
  std::string high = f.enqueue("q1", "{}", {"--priority", "10"});
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(f.wait_state(low_q2, "done")) << daemon.output();
  auto runs = f.runs();
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].id, high);
  EXPECT_EQ(runs[1].id, mid);
  EXPECT_EQ(runs[2].id, low);
  EXPECT_EQ(runs[3].id, low_q2);
}

TEST(Queue, BadInputIsRefusedAndNothingIsWritten) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  struct Case {
    std::vector<std::string> args;
    std::string input, message;
  } cases[] = {
      {{"enqueue", "q1", "--payload", "{not json"}, "", "--payload is not valid JSON"},
      {{"enqueue", "bad queue!", "--payload", "{}"}, "", "queue name 'bad queue!' is not valid"},
      {{"enqueue", "q1", "--payload", "-"}, "[1, 2", "the payload on stdin is not valid JSON"},
      {{"enqueue", "q1", "--batch"}, "{}\n{\"ok\": 1}\nnope\n", "stdin line 3 is not valid JSON"},
      // Both used to crash preforkctl: an uncaught exception (exit 134), a stack
      // overflow writing the value out again (exit 139).
      {{"enqueue", "q1", "--payload", "1e999"}, "",
       "--payload is not valid JSON: number overflow parsing '1e999'"},
      {{"enqueue", "q1", "--payload", "-"}, std::string(100000, '[') + std::string(100000, ']'),
       "the payload on stdin is not valid JSON: nested deeper than 512 levels"},
      {{"enqueue", "q1", "--delay", "soon"}, "", "--delay: 'soon' is not a duration"},
      {{"enqueue", "q1", "--priority", "high"}, "", "--priority must be an integer"},
      {{"enqueue", "q1", "--priority", "2147483648"}, "",
       "--priority must be an integer up to 2147483647 (got '2147483648')"},
      {{"enqueue", "q1", "--max-attempts", "0"}, "", "--max-attempts must be an integer >= 1"},
      {{"job", "123456"}, "", "no job with id 123456"},
      {{"job", "abc"}, "", "no job with id 'abc'"},
      {{"retry", "999"}, "", "no job with id 999"},
      {{"jobs", "--state", "sleeping"}, "", "--state 'sleeping' is not one of"},
      {{"enqueue", "q1", "--source", "nope"}, "", "no source named 'nope'"},
      {{"frobnicate"}, "", "unknown command 'frobnicate'"},
      // Found by a probe: what followed a NUL reached exec handlers; February 30th
      // became March 2nd; a negative limit listed everything.
      {{"enqueue", "q1", "--payload", "-"}, std::string("{\"a\":\"x\"}\0garbage", 17),
       "the payload on stdin is not valid JSON: a NUL byte at offset 9"},
      {{"enqueue", "q1", "--batch"}, std::string("{}\n{\"a\":1}\0x\n", 13),
       "stdin line 2 is not valid JSON: a NUL byte at offset 7"},
      {{"enqueue", "q1", "--at", "2026-02-30T00:00:00Z"}, "",
       "--at '2026-02-30T00:00:00Z' is not a date that exists"},
      {{"enqueue", "q1", "--at", "2026-04-31T12:00:00Z"}, "", "is not a date that exists"},
      {{"enqueue", "q1", "--at", "2027-01-01T10:00:00"}, "",
       "--at '2027-01-01T10:00:00' has no zone: add Z for UTC ('2027-01-01T10:00:00Z'), or give Unix "
       "seconds"},
      {{"jobs", "--limit", "-3"}, "", "--limit must be a number from 1 to 1000000 (got '-3')"},
      // Found by a probe: "before 2200" took 2200-01-01 itself.
      {{"enqueue", "q1", "--at", "2200-01-01T00:00:00Z"}, "", "is too far ahead: give a time before 2200"},
      {{"enqueue", "q1", "--at", "7258118400"}, "", "is too far ahead: give a time before 2200"},
      // Found by a probe: the key forgotten, --batch became the key and stdin was never
      // read (exit 0, one job with a null payload).
      {{"enqueue", "q1", "--unique", "--batch"}, "{}\n{}\n",
       "--unique needs a value, got the option '--batch' (for a value that starts with -- write "
       "--unique=VALUE)"},
      {{"enqueue", "q1", "--source", "--payload", "{}"}, "", "--source needs a value, got the option '--payload'"},
      {{"jobs", "--limit", "0"}, "", "--limit must be a number from 1 to 1000000 (got '0')"},
      {{"jobs", "--queue", "bad q"}, "", "--queue 'bad q' is not valid"},
      {{"jobs", "q1"}, "", "jobs takes no argument (got 'q1')"},
      {{"stats", "--json", "extra"}, "", "stats takes no argument (got 'extra')"},
      // An option a command does not use was taken and ignored: `stats --queue q1`
      // showed every queue.
      {{"stats", "--queue", "q1"}, "", "option --queue does not apply to stats (it takes: --source --json)"},
      {{"retry", "1", "--json"}, "", "option --json does not apply to retry (it takes: --source)"},
      {{"job", "1", "--delay", "5s"}, "", "option --delay does not apply to job"},
      {{"delete"}, "", "delete needs job IDs, or --queue Q [--state S]"},
      {{"delete", "1", "--queue", "q1"}, "", "delete takes job IDs or --queue Q, not both"},
      {{"delete", "--state", "dead"}, "", "--state needs --queue"},
      {{"delete", "--queue", "q1", "--state", "running"}, "",
       "--state 'running' is not one of queued, retry, dead, done (running jobs are never deleted)"},
      {{"delete", "--queue", "bad q"}, "", "--queue 'bad q' is not valid"},
      {{"delete", "999"}, "", "no job with id 999"},
      // Found by a probe: migrate took an argument and ignored it; a repeated option
      // kept its last value without a word; " 1" and "+2" were job ids to SQLite only.
      {{"migrate", "foo"}, "", "migrate takes no argument (got 'foo'): name the source with --source NAME"},
      {{"delete", "--queue", "q1", "--queue", "q2"}, "", "--queue given twice"},
      {{"job", " 1"}, "", "no job with id ' 1' (SQLite job ids are positive numbers)"},
      {{"job", "+2"}, "", "no job with id '+2'"},
  };
  for (const auto& c : cases) {
    auto result = f.ctl(c.args, c.input);
    EXPECT_NE(result.exit_code, 0) << c.message;
    EXPECT_NE(result.err.find(c.message), std::string::npos) << "wanted: " << c.message << "\ngot: " << result.err;
  }
  auto stats = f.ctl({"stats", "--json"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_EQ(nlohmann::json::parse(stats.out), nlohmann::json::object());
}

// The payload is stored as it was given, on one line: not parsed and written out again,
// which turned integers beyond 64 bits into doubles.
// A queue name with a typo used to be taken without a word, and its jobs waited for ever.
TEST(Queue, EnqueueOnAQueueNoPoolTakesWarnsAndKeepsTheJob) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  auto typo = f.ctl({"enqueue", "q3", "--payload", "{}"});
  EXPECT_EQ(typo.exit_code, 0) << typo.err;
  EXPECT_NE(typo.err.find("preforkctl: warning: no pool in " + f.config +
                          " takes queue 'q3' from source 'default' (its pools take: q1, q2); "
                          "the job waits there until one does"),
            std::string::npos)
      << typo.err;
  EXPECT_EQ(f.stats("q3")["queued"], 1);
  auto served = f.ctl({"enqueue", "q2", "--payload", "{}"});
  EXPECT_EQ(served.exit_code, 0);
  EXPECT_EQ(served.err, "");
}

// preforkctl may run where the pools do not (an application host enqueueing, or the
// workers' host mid-deploy): a command, directory or user of the pools that is missing
// there must not stop it. It used to refuse the whole file, and no job was written.
TEST(Queue, PreforkctlNeedsOnlyTheSourcesNotWhatThePoolsRunOnThisHost) {
  JobsFixture f;
  write_file(f.config,
             "log: { file: no-such-dir/preforkd.log }\n"
             "pidfile: no-such-dir/preforkd.pid\n"
             "pools:\n" +
                 jobs_pool("work", "{ exec: [bin/not-deployed-yet] }", {"q1"}, 1,
                           "    working_directory: releases/current\n    user: no-such-user-here\n") +
                 "  web:\n    command: [bin/server]\n    group: no-such-group-here\n"
                 "  lib:\n    function: not_registered_here\n");
  std::string id = f.enqueue("q1", "{}");
  EXPECT_EQ(f.state(id), "queued");
  EXPECT_EQ(f.stats("q1")["queued"], 1);
  // preforkd itself, which runs them, still refuses each of them.
  auto check = run({preforkd_bin(), "-c", f.config, "--check"}, "", f.env);
  EXPECT_NE(check.exit_code, 0);
  for (const char* problem : {"log.file: directory", "pidfile: directory", "not-deployed-yet' not found",
                              "working_directory", "no such user 'no-such-user-here'",
                              "no such group 'no-such-group-here'", "bin/server' not found",
                              "not_registered_here"})
    EXPECT_NE(check.err.find(problem), std::string::npos) << problem << "\n" << check.err;
}

// `jobs` shows at most --limit (100) jobs; it used to leave out the rest without a word.
TEST(Queue, JobsSaysWhenThereAreMoreThanItShows) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  auto ids = f.enqueue_batch("q1", std::vector<std::string>(5, "{}"));
  auto cut = f.ctl({"jobs", "--limit", "3", "--json"});
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  auto shown = nlohmann::json::parse(cut.out);
  ASSERT_EQ(shown.size(), 3u);
  EXPECT_EQ(shown[0]["id"], ids[0]);  // oldest first
  EXPECT_NE(cut.err.find("the first 3 job(s) by id, and there are more: raise --limit"), std::string::npos)
      << cut.err;
  auto all = f.ctl({"jobs", "--limit", "5"});
  EXPECT_EQ(all.exit_code, 0);
  EXPECT_EQ(all.err, "");
}

TEST(Queue, APayloadIsStoredAsGivenBigIntegersIncluded) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  auto id = f.enqueue("q1", "{\"n\": 18446744073709551616,\n \"m\": 123456789012345678901234567890}");
  auto shown = f.ctl({"job", id});
  EXPECT_NE(shown.out.find("payload      {\"n\": 18446744073709551616,  \"m\": 123456789012345678901234567890}"),
            std::string::npos) << shown.out;
  // The JSON views too: they used to parse and re-encode it (the big integers as
  // doubles, 1e2 as 100.0, the keys sorted).
  std::string other = f.enqueue("q1", R"({"z": 1e2, "a": -0, "m": 123456789012345678901234567890})");
  const std::string as_stored = R"("payload": {"z": 1e2, "a": -0, "m": 123456789012345678901234567890})";
  auto one = f.ctl({"job", other, "--json"});
  EXPECT_NE(one.out.find(as_stored), std::string::npos) << one.out;
  EXPECT_EQ(nlohmann::json::parse(one.out)["id"], other);
  auto list = f.ctl({"jobs", "--json"});
  EXPECT_NE(list.out.find(as_stored), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(R"("payload": {"n": 18446744073709551616,  "m": 123456789012345678901234567890})"),
            std::string::npos)
      << list.out;
  EXPECT_EQ(nlohmann::json::parse(list.out).size(), 2u);
}

// A unique key may hold any text, the payload's placeholder included: it used to be
// replaced there, and the payloads of the jobs after it shifted by one.
TEST(Queue, JobsJsonShowsEachPayloadInItsOwnPlaceWhateverTheUniqueKeys) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  f.enqueue("q1", R"({"first": 1})", {"--unique", "\x01preforkd-payload-1\x01"});
  f.enqueue("q1", R"({"second": 2})");
  auto list = f.ctl({"jobs", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto jobs = nlohmann::json::parse(list.out);
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0]["payload"], nlohmann::json::parse(R"({"first": 1})"));
  EXPECT_EQ(jobs[0]["unique_key"], "\x01preforkd-payload-1\x01");
  EXPECT_EQ(jobs[1]["payload"], nlohmann::json::parse(R"({"second": 2})"));
  EXPECT_TRUE(jobs[1]["unique_key"].is_null());
}

// Found by fuzzing preforkctl's arguments.
TEST(Queue, PreforkctlArgumentsAtTheEdges) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"-x", "q1"}, 1));
  // A queue whose name starts with '-' (valid in the config) could not be named.
  auto dashed = f.ctl({"enqueue", "-x"});
  EXPECT_EQ(dashed.exit_code, 2);
  EXPECT_NE(dashed.err.find("unknown option '-x' (an argument that starts with '-' goes after '--': COMMAND -- -x)"),
            std::string::npos)
      << dashed.err;
  auto after_dashes = f.ctl({"enqueue", "--payload", "{}", "--", "-x"});
  ASSERT_EQ(after_dashes.exit_code, 0) << after_dashes.err;
  EXPECT_EQ(f.job("1")["queue"], "-x");
  // --queue='' listed every queue's jobs, as if it had not been given.
  auto empty_queue = f.ctl({"jobs", "--queue="});
  EXPECT_EQ(empty_queue.exit_code, 2);
  EXPECT_NE(empty_queue.err.find("--queue '' is not valid"), std::string::npos) << empty_queue.err;
  // Before 1970: stored as a time in 1754, shown with two digits of milliseconds.
  for (const char* at : {"0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"}) {
    auto early = f.ctl({"enqueue", "q1", "--at", at});
    EXPECT_EQ(early.exit_code, 2) << at;
    EXPECT_NE(early.err.find("is before 1970"), std::string::npos) << early.err;
  }
  std::string epoch = f.enqueue("q1", "{}", {"--at", "0"});
  EXPECT_EQ(f.job(epoch)["run_at"], "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(f.stats("q1")["queued"], 1);
}

TEST(Queue, DeletedJobsNeverRunAndRunningOnesAreLeftAlone) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"q1"}, 1));
  expect_deleted_jobs_never_run_and_running_ones_are_left_alone(f, "q1");
}

// Ids are per source. Found by probes: "the first source" was the first by name, not
// in the file, and `delete 1` deleted another source's job 1; `job 1` showed the first
// source's job 1 after `enqueue` had printed the other's, and `stats` half the queues.
TEST(Queue, WithSeveralSourcesEveryCommandNotRoutedByQueueNeedsOne) {
  JobsFixture f;
  write_file(f.config, "sources:\n"
                       "  main: { type: sqlite, path: main.db }\n"
                       "  archive: { type: sqlite, path: archive.db }\n"
                       "pools:\n" +
                           jobs_pool("work", exec_handler(), {"q1"}, 1, "    source: main\n") +
                           jobs_pool("old", exec_handler(), {"a1"}, 1, "    source: archive\n"));
  std::string in_main = f.enqueue("q1", "{}");
  std::string in_archive = f.enqueue("a1", "{}");
  ASSERT_EQ(in_main, in_archive);  // both job 1, of different sources
  EXPECT_EQ(f.job(in_main, "main")["queue"], "q1");
  EXPECT_EQ(f.job(in_archive, "archive")["queue"], "a1");
  for (const std::string command : {"job", "retry", "delete"}) {
    auto ambiguous = f.ctl({command, in_main});
    EXPECT_EQ(ambiguous.exit_code, 2) << command;
    EXPECT_NE(ambiguous.err.find(command + ": " + f.config +
                                 " has several sources (main archive): say which one holds the job with --source NAME"),
              std::string::npos)
        << ambiguous.err;
  }
  auto stats = f.ctl({"stats"});
  EXPECT_EQ(stats.exit_code, 2);
  EXPECT_NE(stats.err.find("say which one to use with --source NAME"), std::string::npos) << stats.err;
  EXPECT_NE(f.ctl({"jobs"}).err.find("with --source NAME (or give --queue Q)"), std::string::npos);
  EXPECT_EQ(f.ctl({"jobs", "--queue", "a1"}).exit_code, 0);
  EXPECT_EQ(f.ctl({"stats", "--source", "archive"}).exit_code, 0);
  auto chosen = f.ctl({"delete", in_archive, "--source", "archive"});
  EXPECT_EQ(chosen.exit_code, 0) << chosen.err;
  EXPECT_EQ(f.ctl({"job", in_archive, "--source", "archive"}).exit_code, 1);
  EXPECT_EQ(f.state(in_main, "main"), "queued");
}

// A wrong -c (or a config of command pools only) used to get an empty database made at
// its path, and empty lists or "no job with id 1", with nothing to say why.
TEST(Queue, CommandsThatReadJobsMakeNoDatabaseWhereThereIsNone) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  std::string database = f.dir.file("var/jobs.db");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"stats"}, {"stats", "--json"}, {"jobs"}, {"jobs", "--queue", "q1"}, {"job", "1"},
           {"retry", "1"}, {"delete", "1"}, {"delete", "--queue", "q1"}}) {
    auto result = f.ctl(args);
    EXPECT_EQ(result.exit_code, 1) << args.front();
    EXPECT_NE(result.err.find("no job database at " + database + " (source 'default' of " + f.config +
                              "): nothing was ever enqueued there"),
              std::string::npos)
        << result.err;
    EXPECT_FALSE(std::filesystem::exists(database)) << args.front();
  }
  EXPECT_FALSE(std::filesystem::exists(f.dir.file("var")));
  std::string id = f.enqueue("q1", "{}");
  EXPECT_EQ(f.stats("q1")["queued"], 1);
  EXPECT_EQ(f.state(id), "queued");
}

// Found by a probe: SQLite's "unable to open database file" under a low open-file
// limit was said to be a matter of permissions.
TEST(Queue, TooManyOpenFilesIsSaidAsSuch) {
#if defined(__SANITIZE_ADDRESS__)
  // UBSan's vptr check probes memory through a pipe of its own: with one descriptor
  // free it reports the config's ifstream as an invalid object (as in
  // Respawn.RunningOutOfFileDescriptorsNamesTheLimitToRaise). The release build runs it.
  GTEST_SKIP() << "the sanitizers need descriptors of their own";
#endif
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  // One descriptor free: enough to load, to read the config and to open the database,
  // not its -wal. ctest may leave descriptors open that every child inherits: the free
  // one is the lowest number a child gets nothing at (closed here, or closed on exec).
  int free_fd = 3;
  while (::fcntl(free_fd, F_GETFD) >= 0 && !(::fcntl(free_fd, F_GETFD) & FD_CLOEXEC)) ++free_fd;
  auto limited = run({"/usr/bin/prlimit", "--nofile=" + std::to_string(free_fd + 1), preforkctl_bin(), "-c", f.config,
                      "enqueue", "q1", "--payload", "{}"},
                     "", f.env);
  EXPECT_EQ(limited.exit_code, 1) << limited.err;
  EXPECT_NE(limited.err.find("Too many open files: the open-file limit is reached; raise it: ulimit -n, or "
                             "LimitNOFILE= under systemd"),
            std::string::npos)
      << limited.err;
  EXPECT_EQ(limited.err.find("writable by this user"), std::string::npos) << limited.err;
  EXPECT_EQ(f.ctl({"enqueue", "q1", "--payload", "{}"}).exit_code, 0);
  EXPECT_EQ(f.stats("q1")["queued"], 1);
}

TEST(Queue, RetryRefusesAJobThatIsNotDead) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  std::string id = f.enqueue("q1", "{}");
  auto result = f.ctl({"retry", id});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("job " + id + " is queued"), std::string::npos) << result.err;
}

TEST(Queue, RetryOfAJobWhoseUniqueKeyIsTakenNamesTheHolder) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  expect_retry_refused_while_its_unique_key_is_held(f, "q1");
}

TEST(Queue, ACorruptDatabaseIsRefusedWithAClearMessage) {
  JobsFixture f;
  std::filesystem::create_directories(f.dir.file("var"));
  write_file(f.dir.file("var/jobs.db"), std::string(8192, 'x'));
  write_file(f.config, one_exec_pool());
  auto ctl = f.ctl({"enqueue", "q1", "--payload", "{}"});
  EXPECT_EQ(ctl.exit_code, 1);
  EXPECT_NE(ctl.err.find("file is not a database"), std::string::npos) << ctl.err;
  Daemon daemon(f.config, f.env);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 1) << daemon.output();
  // The implied default source has no entry of its own: the file is its position.
  EXPECT_NE(daemon.output().find("refusing to start: " + f.config + ": source 'default'"), std::string::npos)
      << daemon.output();
  EXPECT_NE(daemon.output().find("file is not a database"), std::string::npos) << daemon.output();
  EXPECT_EQ(read_file(f.dir.file("var/jobs.db")), std::string(8192, 'x')) << "the file was changed";
}

TEST(Queue, AForeignSqliteDatabaseIsNotTouched) {
  JobsFixture f;
  std::filesystem::create_directories(f.dir.file("var"));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(f.dir.file("var/jobs.db").c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE users (id INTEGER, name TEXT)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  write_file(f.config, one_exec_pool());
  auto ctl = f.ctl({"enqueue", "q1", "--payload", "{}"});
  EXPECT_EQ(ctl.exit_code, 1);
  EXPECT_NE(ctl.err.find("not a preforkd job database (it holds tables: users)"), std::string::npos) << ctl.err;
}

TEST(Queue, AnUnwritableDirectoryIsReportedNotIgnored) {
  JobsFixture f;
  std::filesystem::create_directories(f.dir.file("ro"));
  ::chmod(f.dir.file("ro").c_str(), 0555);
  ::chmod(f.dir.path().c_str(), 0755);
  write_file(f.config, "sources:\n  local: { type: sqlite, path: ro/jobs.db }\n" + one_exec_pool());
  ::chmod(f.config.c_str(), 0644);
  // Root writes anywhere: run preforkctl as nobody so the permission applies.
  write_file(f.dir.file("ctl.err"), "");
  ::chmod(f.dir.file("ctl.err").c_str(), 0666);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(99);
    int err = ::open(f.dir.file("ctl.err").c_str(), O_WRONLY | O_TRUNC);
    ::dup2(err, 2);
    ::execl(preforkctl_bin().c_str(), "preforkctl", "-c", f.config.c_str(), "enqueue", "q1",
            "--payload", "{}", nullptr);
    ::_exit(98);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(exit_code(status), 1);
  std::string err = read_file(f.dir.file("ctl.err"));
  EXPECT_NE(err.find("unable to open database file"), std::string::npos) << err;
  EXPECT_NE(err.find("writable"), std::string::npos) << err;
}

TEST(Queue, ADiskFullErrorLosesNoQueuedJob) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  auto ids = f.enqueue_batch("q1", std::vector<std::string>(50, R"({"n": 1})"));
  // RLIMIT_FSIZE makes the database's writes fail as a full disk would (SIGXFSZ ignored).
  std::string big(200000, 'a');
  std::string input;
  for (int i = 0; i < 50; ++i) input += "\"" + big + "\"\n";
  auto full = run({"/bin/sh", "-c",
                   "trap '' XFSZ; ulimit -f 400; exec \"$0\" -c \"$1\" enqueue q1 --batch",
                   preforkctl_bin(), f.config},
                  input, f.env);
  EXPECT_EQ(full.exit_code, 1);
  EXPECT_NE(full.err.find("sqlite"), std::string::npos) << full.err;
  // The 50 earlier jobs are intact and none of the failed batch was half-written.
  EXPECT_EQ(f.stats("q1")["queued"], 50);
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(f.wait_done("q1", 50)) << daemon.output();
}

// The job source is opened before any worker runs, as the pools' user: a database that
// user cannot create or write is refused at start. It used to be opened (and made) as
// root, and every worker then failed to open it, over and over.
TEST(Queue, AJobsPoolWhoseUserCannotWriteTheDatabaseIsRefusedAtStart) {
  JobsFixture f;  // its directory is root's, mode 0700: nobody cannot make var/ there
  write_file(f.config, one_exec_pool("    user: nobody\n    group: nogroup\n"));
  Daemon daemon(f.config, f.env);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 1) << daemon.output();
  EXPECT_NE(daemon.output().find("refusing to start: " + f.config +
                                 ": source 'default': as user 'nobody' (its workers run so): sqlite "),
            std::string::npos)
      << daemon.output();
  // Its var/ may exist: it is the way there that nobody may not take.
  EXPECT_NE(daemon.output().find("cannot create or reach its directory: Permission denied (uid "), std::string::npos)
      << daemon.output();
  EXPECT_FALSE(std::filesystem::exists(f.dir.file("var/jobs.db")));
}

// ... and a database that does not exist yet is made by that user, so that its workers
// can write it.
TEST(Queue, TheDatabaseOfAJobsPoolWithAUserIsMadeByThatUser) {
  JobsFixture f;
  passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  ASSERT_NO_FATAL_FAILURE(give_var_and_job_log_to(f, *nobody));
  write_file(f.config, one_exec_pool("    user: nobody\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  struct stat st {};
  ASSERT_EQ(::stat(f.dir.file("var/jobs.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, nobody->pw_uid);
  std::string id = f.enqueue("q1", "{}");
  EXPECT_TRUE(f.wait_state(id, "done")) << daemon.output();
  EXPECT_EQ(daemon.count_output("source 'default' failed"), 0u) << daemon.output();
}

// Two pools on one source, one as nobody, one as the supervisor's user (root). Found by
// a probe: the start check opened the source as root first, made the database root's,
// then refused to start the pool of nobody, who could only read it.
TEST(Queue, PoolsOfTwoUsersOnOneSourceGetADatabaseBothCanWrite) {
  JobsFixture f;
  passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  ASSERT_NO_FATAL_FAILURE(give_var_and_job_log_to(f, *nobody));
  write_file(f.config, "pools:\n" + jobs_pool("mine", exec_handler(), {"q1"}, 1) +
                           jobs_pool("theirs", exec_handler(), {"q2"}, 1, "    user: nobody\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  struct stat st {};
  ASSERT_EQ(::stat(f.dir.file("var/jobs.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, nobody->pw_uid);
  std::string theirs = f.enqueue("q2", "{}");
  std::string mine = f.enqueue("q1", "{}");
  EXPECT_TRUE(f.wait_state(theirs, "done")) << daemon.output();
  EXPECT_TRUE(f.wait_state(mine, "done")) << daemon.output();
}

// `preforkctl migrate` ahead of a deploy, as root: the database it makes belongs to the
// pools' user. It used to belong to root, and preforkd then refused to start the pool
// ("can only be opened read-only by this user").
TEST(Queue, TheDatabaseMadeByPreforkctlAsRootBelongsToThePoolsUser) {
  JobsFixture f;
  passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  ASSERT_NO_FATAL_FAILURE(give_var_and_job_log_to(f, *nobody));
  write_file(f.config, one_exec_pool("    user: nobody\n"));
  auto migrated = f.ctl({"migrate"});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.err;
  EXPECT_EQ(migrated.err, "");
  std::string id = f.enqueue("q1", "{}");  // as root, into the database nobody made
  struct stat st {};
  ASSERT_EQ(::stat(f.dir.file("var/jobs.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, nobody->pw_uid);
  Daemon daemon(f.config, f.env);
  EXPECT_TRUE(f.wait_state(id, "done")) << daemon.output();
  EXPECT_EQ(daemon.count_output("source 'default' failed"), 0u) << daemon.output();
}

// A database the pool's user may read but not write: SQLite opens it read-only without a
// word, and every write failed later. It passed the start check, and each worker
// reconnected every 100 ms, logging the failure and "reachable again" each time. It is
// now refused at start, and a worker that meets it later (made read-only while preforkd
// runs) fails at the open, with a growing backoff: one failure line, no "reachable again".
TEST(Queue, ADatabaseThePoolsUserCannotWriteIsRefusedAndNeverReconnectedInALoop) {
  JobsFixture f;
  passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  give_var_to(f, *nobody);
  write_file(f.config, one_exec_pool("    user: nobody\n"));
  {
    Daemon daemon(f.config, f.env);  // makes the database, as nobody
    ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  }
  ASSERT_EQ(::chmod(f.dir.file("var/jobs.db").c_str(), 0444), 0);
  Daemon refused(f.config, f.env);
  EXPECT_EQ(exit_code(refused.wait_exit()), 1) << refused.output();
  EXPECT_NE(refused.output().find("can only be opened read-only by this user (uid " +
                                  std::to_string(nobody->pw_uid) + ")"),
            std::string::npos)
      << refused.output();

  // Writable at start, read-only a moment later: the workers' next connection (after
  // HUP, a new generation) opens it read-only and fails.
  ASSERT_EQ(::chmod(f.dir.file("var/jobs.db").c_str(), 0644), 0);
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  // The reload's own check would refuse the file; the old generation's workers keep
  // theirs open. Kill the worker instead: its replacement opens the file afresh.
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  ASSERT_EQ(::chmod(f.dir.file("var/jobs.db").c_str(), 0444), 0);
  ::kill(daemon.children().front(), SIGKILL);
  ASSERT_TRUE(daemon.wait_output("can only be opened read-only")) << daemon.output();
  // What must not happen, watched for 1.5 s (not a wait for something): with a try
  // every 100 ms, each one logged as an outage that ended and a new one, that was about
  // 15 failure lines. The outage now lasts until something works: one line.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(daemon.count_output("source 'default' failed"), 1u) << daemon.output();
  EXPECT_EQ(daemon.count_output("reachable again"), 0u) << daemon.output();
}

// Found by a probe: a signal during the start-up source check (here waiting on a locked
// database) came before the supervisor took its signals: HUP, TERM or USR1 killed it
// without a word, TTIN stopped it. It now waits for the supervisor.
TEST(Queue, ASignalDuringTheStartUpSourceCheckWaitsForTheSupervisor) {
  JobsFixture f;
  write_file(f.config, "sources:\n  local: { type: sqlite, path: var/jobs.db, busy_timeout: 30s }\npools:\n" +
                           jobs_pool("work", exec_handler(), {"q1"}, 1));
  ASSERT_EQ(f.ctl({"migrate"}).exit_code, 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(f.dir.file("var/jobs.db").c_str(), &db), SQLITE_OK);
  // A database in rollback-journal mode, locked: the check's switch to WAL waits.
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA journal_mode=DELETE; BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  Daemon daemon(f.config, f.env);
  auto holds_the_database = [&] {
    // preforkd itself: before its exec the test's own copy holds the test's connection.
    if (process_name(daemon.pid()) != "preforkd") return false;
    std::error_code ec;
    for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(daemon.pid()) + "/fd", ec))
      if (std::filesystem::read_symlink(fd.path(), ec).string().find("jobs.db") != std::string::npos) return true;
    return false;
  };
  ASSERT_TRUE(wait_until(holds_the_database)) << daemon.output();
  daemon.signal(SIGHUP);
  daemon.signal(SIGTTIN);
  ASSERT_TRUE(daemon.running()) << daemon.output();
  EXPECT_NE(process_state(daemon.pid()), 'T');
  ASSERT_EQ(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  // The HUP may be taken before generation 1 is ready: then generation 2 is.
  ASSERT_TRUE(daemon.wait_output("ready: all pools up")) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("reload requested")) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("TTIN")) << daemon.output();
  EXPECT_TRUE(daemon.running());
}

// The database deleted while preforkd runs (and made anew by the next enqueue): the
// workers used to keep the deleted file open, and new jobs waited until a HUP.
TEST(Queue, ADatabaseDeletedWhileRunningIsReopenedAndNewJobsRun) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  Daemon daemon(f.config, f.env);
  std::string first = f.enqueue("q1", "{}");
  ASSERT_TRUE(f.wait_state(first, "done")) << daemon.output();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(f.dir.file(std::string("var/jobs.db") + suffix));
  std::string second = f.enqueue("q1", "{}");  // a new, empty database
  EXPECT_TRUE(f.wait_state(second, "done", 20s)) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("the database file was deleted or replaced while open")) << daemon.output();
}

// A full disk: preforkctl's enqueue is refused with a clear message and leaves nothing
// half-written; the workers fail their writes and wait with backoff; once space is freed
// every job queued before runs, once. The database lives on an 8 MiB tmpfs mounted in a
// mount namespace of this test's own process. Only 512 KiB are freed, less than the
// write-ahead log grows to before it checkpoints itself (1,000 pages, 4 MiB): the log
// used to fill that space again, and nothing moved until more was freed.
TEST(Queue, AFullDiskRefusesNewJobsLosesNoneAndWorkResumesOnceSpaceIsFreed) {
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    GTEST_SKIP() << "needs a private mount namespace (root, CAP_SYS_ADMIN): " << std::strerror(errno);
  JobsFixture f;
  std::string var = f.dir.file("var");
  std::filesystem::create_directories(var);
  if (::mount("tmpfs", var.c_str(), "tmpfs", 0, "size=8m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{var};
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"q"}, 2));
  {
    std::ofstream filler(var + "/filler", std::ios::binary);
    filler << std::string(7 << 20, '\0');
  }
  const std::string payload = R"({"text": ")" + std::string(30000, 'a') + R"("})";
  int queued = 0;
  RunResult refused;
  while (queued < 400) {
    refused = f.ctl({"enqueue", "q", "--payload", payload});
    if (refused.exit_code != 0) break;
    ++queued;
  }
  ASSERT_GT(queued, 10);
  ASSERT_LT(queued, 400) << "the disk never filled";
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("database or disk is full"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("(disk full: free space; this write was rolled back, nothing half-done)"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(f.stats("q")["queued"], queued);

  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_output("database or disk is full")) << daemon.output();
  EXPECT_EQ(f.stats("q")["dead"], 0);
  std::filesystem::resize_file(var + "/filler", (7 << 20) - (512 << 10));
  ASSERT_TRUE(f.wait_done("q", queued, 60s)) << daemon.output();
  std::filesystem::remove(var + "/filler");
  auto ends = f.ends_per_job();
  EXPECT_EQ(ends.size(), static_cast<size_t>(queued));
  for (const auto& [id, count] : ends) EXPECT_EQ(count, 1) << "job " << id;
  EXPECT_EQ(daemon.count_output("exited pool=work"), 0u) << "a worker died of it\n" << daemon.output();

  // Stopped, the last connection removes the -wal and -shm files. With the disk full
  // again, opening the database needs a new -shm: the message says so (it used to be
  // "disk I/O error: disk I/O error [code 4874]").
  daemon.signal(SIGTERM);
  ASSERT_EQ(exit_code(daemon.wait_exit()), 0) << daemon.output();
  {
    // Workers closing at the same moment may each leave the files to the other; a
    // connection that is surely the last one removes them.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((var + "/jobs.db").c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "SELECT count(*) FROM preforkd_jobs", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  ASSERT_FALSE(std::filesystem::exists(var + "/jobs.db-shm"));
  {
    std::ofstream filler(var + "/filler", std::ios::binary);
    filler << std::string(16 << 20, '\0');  // more than there is room for
  }
  auto stats = f.ctl({"stats"});
  EXPECT_EQ(stats.exit_code, 1);
  EXPECT_NE(stats.err.find("PRAGMA journal_mode=WAL: disk I/O error [code 4874] (cannot make or grow " + var +
                           "/jobs.db-shm, the WAL index kept beside the database: free space"),
            std::string::npos)
      << stats.err;
}

// Found by a probe: no --version, and a usage error printed 20 lines of usage with the
// problem at the bottom.
TEST(Queue, PreforkctlSaysItsVersionAndPutsAUsageErrorFirst) {
  auto version = run({preforkctl_bin(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("preforkctl ", 0), 0u) << version.out;
  auto wrong = run({preforkctl_bin(), "frobnicate"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_EQ(wrong.err, "preforkctl: unknown command 'frobnicate'\n(preforkctl --help lists the commands and options)\n");
}

// Found by a probe: a job that takes the pool's retry.max_attempts showed "max_attempts": 0.
TEST(Queue, AJobWithoutItsOwnMaxAttemptsShowsThePoolsApplies) {
  JobsFixture f;
  write_file(f.config, one_exec_pool());
  std::string pools = f.enqueue("q1", "{}");
  std::string own = f.enqueue("q1", "{}", {"--max-attempts", "4"});
  EXPECT_TRUE(f.job(pools)["max_attempts"].is_null()) << f.job(pools);
  EXPECT_EQ(f.job(own)["max_attempts"], 4);
  EXPECT_NE(f.ctl({"job", pools}).out.find("attempts     0 (of the pool's retry.max_attempts)\n"), std::string::npos)
      << f.ctl({"job", pools}).out;
  EXPECT_NE(f.ctl({"job", own}).out.find("attempts     0 of 4\n"), std::string::npos) << f.ctl({"job", own}).out;
}
