// Each handler kind (exec, persistent, in-process) runs jobs and reports done, retry
// and failure; timeouts, backoff, dead after max_attempts and `preforkctl retry`.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "harness/jobs_harness.hpp"

using namespace harness;

namespace {

const std::string fast_retry = "    retry: { max_attempts: 3, backoff: fixed, base: 50ms }\n";

struct HandlerCase {
  std::string name;
  std::string handler;   // YAML
  std::string queue;
  std::string binary;    // "" = preforkd
};
void PrintTo(const HandlerCase& c, std::ostream* os) { *os << c.name; }

class EveryHandler : public ::testing::TestWithParam<HandlerCase> {
 protected:
  void start(const std::string& extra = fast_retry, const std::string& sources = "") {
    const auto& c = GetParam();
    write_file(f.config, sources + "pools:\n" + jobs_pool("work", c.handler, {c.queue}, 2, extra));
    daemon = std::make_unique<Daemon>(f.config, f.env, std::vector<std::string>{}, c.binary);
  }
  const std::string& queue() const { return GetParam().queue; }
  JobsFixture f;
  std::unique_ptr<Daemon> daemon;
};

}  // namespace

TEST_P(EveryHandler, RunsAJobAndMarksItDone) {
  start();
  std::string id = f.enqueue(queue(), R"({"hello": "world"})");
  ASSERT_TRUE(f.wait_state(id, "done")) << daemon->output();
  auto job = f.job(id);
  EXPECT_EQ(job["attempts"], 1);
  EXPECT_TRUE(job["last_error"].is_null());
  auto runs = f.runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].id, id);
  EXPECT_EQ(runs[0].queue, queue());
  EXPECT_EQ(runs[0].attempt, 1);
}

TEST_P(EveryHandler, AFailingJobIsRetriedWithBackoffThenSucceeds) {
  start();
  std::string id = f.enqueue(queue(), R"({"fail_until_attempt": 3})");
  ASSERT_TRUE(f.wait_state(id, "done")) << daemon->output();
  EXPECT_EQ(f.job(id)["attempts"], 3);
  auto runs = f.runs();
  ASSERT_EQ(runs.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(runs[i].attempt, i + 1);
  EXPECT_TRUE(daemon->wait_output("job=" + id + " queue=" + queue() + " attempt=1: failed:"))
      << daemon->output();
}

TEST_P(EveryHandler, AJobThatKeepsFailingGoesDeadAndRetryBringsItBack) {
  start();
  std::string id = f.enqueue(queue(), R"({"exit": 3})");
  ASSERT_TRUE(f.wait_state(id, "dead")) << daemon->output();
  auto job = f.job(id);
  EXPECT_EQ(job["attempts"], 3);
  EXPECT_FALSE(job["last_error"].is_null());
  EXPECT_EQ(f.runs().size(), 3u);

  auto retried = f.ctl({"retry", id});
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 6u; })) << daemon->output();
  EXPECT_TRUE(f.wait_state(id, "dead"));
}

TEST_P(EveryHandler, ATimedOutJobFailsWithTimeoutAndFollowsTheRetryPolicy) {
  start("    timeout: 300ms\n    timeout_grace: 200ms\n"
        "    retry: { max_attempts: 2, backoff: fixed, base: 50ms }\n");
  std::string id = f.enqueue(queue(), R"({"sleep_ms": 20000, "ignore_term": true})");
  ASSERT_TRUE(f.wait_state(id, "dead", 30s)) << daemon->output();
  auto job = f.job(id);
  EXPECT_EQ(job["attempts"], 2);
  EXPECT_NE(job["last_error"].get<std::string>().find("timeout after 300ms"), std::string::npos) << job;
  // Nothing ran to its end.
  for (const auto& run : f.runs()) EXPECT_FALSE(run.ended);
}

TEST_P(EveryHandler, AJobLongerThanTheLeaseRightAfterAShortOneRunsOnce) {
  // The heartbeat must cover a job that follows another at once (the in-process
  // watchdog is then not woken for it) as well as a first one.
  start(fast_retry, "sources:\n  local: { type: sqlite, path: var/jobs.db, lease: 2s }\n");
  auto ids = f.enqueue_batch(queue(), {"{}", "{}", R"({"sleep_ms": 5000})"});
  for (const auto& id : ids) ASSERT_TRUE(f.wait_state(id, "done", 30s)) << daemon->output();
  EXPECT_EQ(f.runs().size(), 3u) << "the long job ran twice";
  EXPECT_EQ(f.job(ids[2])["attempts"], 1);
}

INSTANTIATE_TEST_SUITE_P(
    Handlers, EveryHandler,
    ::testing::Values(HandlerCase{"exec", exec_handler(), "mail", ""},
                      HandlerCase{"persistent", persistent_handler(), "mail", ""},
                      HandlerCase{"in_process", "in_process", "inproc", test_inprocess_bin()}),
    [](const auto& info) { return info.param.name; });

TEST(ExecHandler, Exit75AsksForARetryAndTheJobSeesItsEnvironment) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"mail"}, 1, fast_retry));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("mail", R"({"exit": 75})");
  ASSERT_TRUE(f.wait_state(id, "dead")) << daemon.output();
  EXPECT_NE(f.job(id)["last_error"].get<std::string>().find("exit status 75"), std::string::npos);
  // The handler's stderr reached the log with pool, pid and job id.
  EXPECT_TRUE(daemon.wait_output("job=" + id + ": exec handler got job " + id)) << daemon.output();
}

namespace {

std::string background_job(const std::string& pid_file, const std::string& more = "") {
  return R"({"background_ms": 60000, "background_pid_file": ")" + pid_file + "\"" + more + "}";
}

// The pid the handler wrote for its background child; KILLs that child when the test
// ends, whatever happened, so that no 60 s sleeper outlives it.
struct BackgroundChild {
  std::string pid_file;
  pid_t pid() const {
    std::string text = read_file(pid_file);
    return text.empty() ? 0 : std::stoi(text);
  }
  ~BackgroundChild() {
    if (pid_t p = pid(); p > 0) ::kill(p, SIGKILL);
  }
};

}  // namespace

// The job is over when the handler exits: a process it left in the background, still
// holding its stdout and stderr, neither holds the job up nor is killed (not at the
// job's end, nor when the worker runs the next job).
TEST(ExecHandler, ABackgroundChildOfTheHandlerDoesNotHoldUpItsJobAndIsLeftAlone) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"mail"}, 1));
  Daemon daemon(f.config, f.env);
  BackgroundChild background{f.dir.file("background.pid")};
  std::string id = f.enqueue("mail", background_job(background.pid_file));
  ASSERT_TRUE(f.wait_state(id, "done", 15s)) << daemon.output();
  ASSERT_GT(background.pid(), 0);
  std::string next = f.enqueue("mail", "{}");
  ASSERT_TRUE(f.wait_state(next, "done", 15s)) << daemon.output();
  EXPECT_TRUE(pid_alive(background.pid()));
}

// A timeout stops the handler's whole process group, its background children too.
TEST(ExecHandler, ATimeoutStopsWhatTheHandlerStartedInTheBackgroundToo) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"mail"}, 1,
                                              "    timeout: 2s\n    timeout_grace: 200ms\n"
                                              "    retry: { max_attempts: 1 }\n"));
  Daemon daemon(f.config, f.env);
  BackgroundChild background{f.dir.file("background.pid")};
  std::string id = f.enqueue("mail", background_job(background.pid_file, R"(, "sleep_ms": 20000)"));
  ASSERT_TRUE(f.wait_state(id, "dead", 15s)) << daemon.output();
  pid_t pid = background.pid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(wait_until([&] { return !pid_alive(pid); })) << "pid " << pid;
}

// A handler program gone (a deploy in progress) or not executable: the job goes back
// uncounted and the worker exits, respawned with backoff, until the program is back. For
// exec (one process per job) and persistent handlers (started at the first job) alike.
class HandlerThatCannotBeStarted : public ::testing::TestWithParam<std::string> {};

TEST_P(HandlerThatCannotBeStarted, ChargesNoAttemptAndSaysWhy) {
  const std::string kind = GetParam();
  JobsFixture f;
  std::string handler = f.dir.file("handler");
  std::filesystem::copy_file(test_handler_bin(), handler);
  write_file(f.config, "pools:\n" + jobs_pool("work", "{ " + kind + ": [" + handler + ", " + kind + "] }", {"q"}, 1,
                                              "    err_respawn_interval: 50ms\n    err_respawn_max: 200ms\n"
                                              "    retry: { max_attempts: 1 }\n"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  std::filesystem::rename(handler, handler + ".away");
  std::string id = f.enqueue("q", "{}");
  ASSERT_TRUE(daemon.wait_output("cannot run the handler: execve(" + handler + "): No such file or directory",
                                 20s, 2))
      << daemon.output();
  // Between two tries it is queued, attempts 0, or leased to the next try: never dead.
  EXPECT_NE(f.state(id), "dead");
  std::filesystem::rename(handler + ".away", handler);
  ASSERT_TRUE(f.wait_state(id, "done", 20s)) << daemon.output();
  EXPECT_EQ(f.job(id)["attempts"], 1);  // with max_attempts 1: no try before was charged
}

INSTANTIATE_TEST_SUITE_P(Handlers, HandlerThatCannotBeStarted, ::testing::Values("exec", "persistent"),
                         [](const auto& info) { return info.param; });

// Found by a probe: the lease heartbeat stopped at TERM, so with a grace longer than
// the lease the job was handed to a second worker (and a third) while the first was
// still running it.
TEST(ExecHandler, DuringItsGraceAfterTermTheJobKeepsItsLeaseAndRunsNowhereElse) {
  JobsFixture f;
  write_file(f.config, "sources:\n  local: { type: sqlite, path: var/jobs.db, lease: 1s }\npools:\n" +
                           jobs_pool("work", exec_handler(), {"mail"}, 2,
                                     "    timeout: 300ms\n    timeout_grace: 10s\n"
                                     "    retry: { max_attempts: 2, backoff: fixed, base: 50ms }\n"));
  Daemon daemon(f.config, f.env);
  // It ignores TERM and ends by itself 3 s in: three leases past its timeout.
  std::string id = f.enqueue("mail", R"({"ignore_term": true, "sleep_ms": 3000})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() >= 2; }, 30s)) << daemon.output();
  std::string log = read_file(f.job_log);
  size_t first_end = log.find("end " + id + " 1 ");
  size_t second_run = log.find("run " + id + " 2 ");
  ASSERT_NE(first_end, std::string::npos) << "a second run began while the first was running\n" << log;
  EXPECT_LT(first_end, second_run) << log;
  EXPECT_EQ(daemon.count_output("sending KILL"), 0u) << daemon.output();
}

// Found by a probe: during the grace after TERM the handler's output was not read, so
// one that wrote more than a pipe holds while it cleaned up blocked, and was KILLed.
TEST(ExecHandler, AHandlerThatWritesWhileItCleansUpAfterTermIsReadNotKilled) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"mail"}, 1,
                                              "    timeout: 300ms\n    timeout_grace: 5s\n"
                                              "    retry: { max_attempts: 1 }\n"));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("mail", R"({"on_term_write": 300000, "sleep_ms": 20000})");
  ASSERT_TRUE(f.wait_state(id, "dead", 30s)) << daemon.output();
  EXPECT_EQ(f.job(id)["last_error"], "timeout after 300ms");
  EXPECT_TRUE(daemon.wait_output("term handler done")) << daemon.output();
  EXPECT_EQ(daemon.count_output("sending KILL"), 0u);
}

// Found by a probe: a handler that exits after answering (one that recycles itself
// every N jobs) could take the next request into its pipe on its way out. That job
// was charged ("exit status 0 while running the job") without ever reaching it.
TEST(PersistentHandler, AJobSentToAHandlerOnItsWayOutGoesToANewOneUncharged) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"mail"}, 1,
                                              "    retry: { max_attempts: 1 }\n"));
  auto ids = f.enqueue_batch("mail", {R"({"exit_after_answer_ms": 500})", "{}"});
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(f.wait_state(ids[1], "done", 30s)) << daemon.output();
  EXPECT_EQ(f.job(ids[1])["attempts"], 1);
  EXPECT_EQ(f.ends_per_job()[ids[1]], 1);
  EXPECT_TRUE(daemon.wait_output("before it read the job; sending the job to a new one")) << daemon.output();
}

// Found by a probe: a worker that was done (recycled, QUIT, a reload) KILLed its
// persistent handler, which lost what it does after an answer. It now gets end of input.
TEST(PersistentHandler, AWorkerThatIsDoneClosesItsHandlersInputInsteadOfKillingIt) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"mail"}, 1,
                                              "    max_requests_per_child: 1\n"));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("mail", "{}");
  ASSERT_TRUE(f.wait_state(id, "done")) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("got EOF")) << daemon.output();
  daemon.signal(SIGQUIT);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0) << daemon.output();
  EXPECT_EQ(daemon.count_output("sending TERM"), 0u) << daemon.output();
}

// Found by a probe: on TERM an in-process job that did not stop ran on until
// graceful_timeout, when the worker was KILLed; the job, its attempt counted, waited for
// its lease. timeout_grace after TERM it is now given back, as an exec handler's is.
TEST(InProcessHandler, AJobThatDoesNotStopOnTermIsGivenBackAfterTheGrace) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", "in_process", {"inproc"}, 1,
                                              "    timeout_grace: 500ms\n    graceful_timeout: 30s\n"));
  Daemon daemon(f.config, f.env, {}, test_inprocess_bin());
  std::string id = f.enqueue("inproc", R"({"sleep_ms": 60000, "ignore_term": true})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
  daemon.signal(SIGTERM);
  EXPECT_EQ(exit_code(daemon.wait_exit(20s)), 0) << daemon.output();
  EXPECT_NE(daemon.output().find("in-process handler still running 500ms after TERM: giving the job back"),
            std::string::npos)
      << daemon.output();
  EXPECT_EQ(f.state(id), "queued");
  EXPECT_EQ(f.job(id)["attempts"], 0);
}

// Found by a probe: exit() in a handler ended the worker with nothing said of the job,
// which stayed running until its lease ran out and then came back, over and over.
TEST(InProcessHandler, AHandlerThatCallsExitFailsItsJobAndSaysSo) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", "in_process", {"inproc"}, 1,
                                              "    retry: { max_attempts: 2, backoff: fixed, base: 50ms }\n"));
  Daemon daemon(f.config, f.env, {}, test_inprocess_bin());
  std::string id = f.enqueue("inproc", R"({"call_exit": 0})");
  ASSERT_TRUE(f.wait_state(id, "dead")) << daemon.output();
  EXPECT_EQ(f.job(id)["attempts"], 2);
  EXPECT_EQ(f.job(id)["last_error"], "the handler called exit()");
  EXPECT_NE(daemon.output().find("job=" + id + ": the in-process handler called exit() during the job"),
            std::string::npos) << daemon.output();
}

// Found by a probe: a handler that forked and let its child return made that child a
// second worker, unknown to the supervisor, taking jobs on a copy of the connection.
TEST(InProcessHandler, AForkOfTheHandlerThatReturnsEndsAndTakesNoJob) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", "in_process", {"inproc"}, 1));
  Daemon daemon(f.config, f.env, {}, test_inprocess_bin());
  std::string forking = f.enqueue("inproc", R"({"fork_and_return": true})");
  ASSERT_TRUE(f.wait_state(forking, "done")) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("a process the in-process handler forked returned from it into the worker"))
      << daemon.output();
  std::vector<std::string> later;
  for (int i = 0; i < 4; ++i) later.push_back(f.enqueue("inproc", "{}"));
  for (const auto& id : later) ASSERT_TRUE(f.wait_state(id, "done")) << daemon.output();
  auto children = daemon.children();
  ASSERT_EQ(children.size(), 1u);
  for (const auto& run : f.runs())
    if (run.id != forking) EXPECT_EQ(run.pid, children.front()) << "job " << run.id;
}

// Found by a probe: a process an in-process handler (or a library pool's function)
// forked outlived its worker and preforkd: a stop signals only the worker.
TEST(InProcessHandler, AProcessTheHandlerStartedDoesNotOutliveItsWorker) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", "in_process", {"inproc"}, 1));
  Daemon daemon(f.config, f.env, {}, test_inprocess_bin());
  std::string id = f.enqueue("inproc", R"({"fork_sleeper": true})");
  ASSERT_TRUE(f.wait_state(id, "done")) << daemon.output();
  std::string log = read_file(f.job_log);
  size_t at = log.find("sleeper ");
  ASSERT_NE(at, std::string::npos) << log;
  pid_t sleeper = std::stoi(log.substr(at + 8));
  ASSERT_TRUE(pid_alive(sleeper));
  daemon.signal(SIGQUIT);
  ASSERT_EQ(exit_code(daemon.wait_exit()), 0) << daemon.output();
  EXPECT_TRUE(wait_until([&] { return !pid_alive(sleeper); })) << daemon.output();
  EXPECT_NE(daemon.output().find("were still running in its process group after it exited: killed them"),
            std::string::npos) << daemon.output();
}

TEST(PersistentHandler, RetryFalseMakesTheJobDeadAtOnce) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"mail"}, 1, fast_retry));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("mail", R"({"permanent": true})");
  ASSERT_TRUE(f.wait_state(id, "dead")) << daemon.output();
  EXPECT_EQ(f.job(id)["attempts"], 1);
}

TEST(PersistentHandler, AHandlerThatDiesIsRestartedAndItsJobRetried) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"mail"}, 1, fast_retry));
  Daemon daemon(f.config, f.env);
  std::string crash = f.enqueue("mail", R"({"crash": true})");
  ASSERT_TRUE(f.wait_state(crash, "dead")) << daemon.output();
  EXPECT_NE(f.job(crash)["last_error"].get<std::string>().find("persistent handler exit status 3"),
            std::string::npos) << f.job(crash);
  std::string fine = f.enqueue("mail", "{}");
  ASSERT_TRUE(f.wait_state(fine, "done")) << daemon.output();
  EXPECT_GE(daemon.count_output("persistent handler started"), 2u);
  // One worker child served all of it: the handler was restarted, not the worker.
  EXPECT_EQ(daemon.count_output("spawned pool=work"), 1u) << daemon.output();
}

TEST(PersistentHandler, OneHandlerProcessServesManyJobs) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"mail"}, 1));
  Daemon daemon(f.config, f.env);
  f.enqueue_batch("mail", std::vector<std::string>(20, "{}"));
  ASSERT_TRUE(f.wait_done("mail", 20)) << daemon.output();
  std::set<pid_t> handler_pids;
  for (const auto& run : f.runs()) handler_pids.insert(run.pid);
  EXPECT_EQ(handler_pids.size(), 1u);
}

// Found by a probe: a handler that printed its answer without the newline and exited
// had the job failed ("exit status 0 while running the job"); the answer now counts.
TEST(PersistentHandler, AnAnswerWithoutItsNewlineBeforeTheHandlerExitsStillCounts) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"mail"}, 1, fast_retry));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("mail", R"({"answer_without_newline": true})");
  ASSERT_TRUE(f.wait_state(id, "done")) << daemon.output();
  EXPECT_EQ(f.job(id)["attempts"], 1);
}

// Found by a probe: what a dying handler wrote last, without a newline, was not logged.
// Its stderr is logged with the job it was running.
TEST(PersistentHandler, ItsLastWordsAreLoggedAndItsOutputNamesTheJob) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"mail"}, 1,
                                              "    retry: { max_attempts: 1 }\n"));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("mail", R"({"last_words": "cannot reach the mail relay"})");
  ASSERT_TRUE(f.wait_state(id, "dead")) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("job=" + id + " handler: not an answer (not JSON: "))
      << daemon.output();
  EXPECT_EQ(daemon.count_output("): cannot reach the mail relay"), 1u) << daemon.output();
  EXPECT_EQ(daemon.count_output("job=" + id + " handler: persistent handler working on job " + id), 1u)
      << daemon.output();
}

// Found by a probe: "retry": "false" was taken as true without a word.
TEST(PersistentHandler, ARetryThatIsNotABooleanFollowsThePolicyAndTheErrorSaysSo) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"mail"}, 1, fast_retry));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("mail", R"({"permanent": true, "retry_value": "false"})");
  ASSERT_TRUE(f.wait_state(id, "dead")) << daemon.output();
  EXPECT_EQ(f.job(id)["attempts"], 3);
  EXPECT_NE(f.job(id)["last_error"].get<std::string>().find(
                R"("retry" must be true or false, not "false": the job follows the retry policy)"),
            std::string::npos)
      << f.job(id);
}

// Found by a probe: whatever a handler wrote went to the log, so one runaway handler
// could fill the disk. Past max_output_logged per job its output is counted, not logged;
// the next job has a budget of its own.
class HandlerThatWritesALot : public ::testing::TestWithParam<std::string> {};

TEST_P(HandlerThatWritesALot, HasItsOutputLoggedUpToMaxOutputLoggedPerJob) {
  const std::string kind = GetParam();
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", kind == "exec" ? exec_handler() : persistent_handler(),
                                              {"q"}, 1, "    max_output_logged: 4KiB\n"));
  Daemon daemon(f.config, f.env);
  // 1,000 lines of 100 bytes each, then 10: the first job logs 40 of them at most.
  std::string loud = f.enqueue("q", R"({"spew_lines": 1000})");
  ASSERT_TRUE(f.wait_state(loud, "done")) << daemon.output();
  std::string quiet = f.enqueue("q", R"({"spew_lines": 10})");
  ASSERT_TRUE(f.wait_state(quiet, "done")) << daemon.output();
  ASSERT_TRUE(daemon.wait_output("more byte(s) of handler output not logged (max_output_logged: 4096 byte(s) per job)"))
      << daemon.output();
  EXPECT_EQ(daemon.count_output("not logged (max_output_logged"), 1u) << daemon.output();
  size_t spewed = daemon.count_output(": spew xxxx");
  EXPECT_GE(spewed, 10u + 30u) << daemon.output();
  EXPECT_LE(spewed, 10u + 41u) << daemon.output();
  EXPECT_EQ(f.state(loud), "done");
}

INSTANTIATE_TEST_SUITE_P(Handlers, HandlerThatWritesALot, ::testing::Values("exec", "persistent"),
                         [](const auto& info) { return info.param; });

// Found by a probe: a handler's colour escapes, bell and carriage return went into the
// text log as they were (a \r hid the line's prefix on a terminal), and a byte that is
// not UTF-8 made grep take the log for binary.
TEST(ExecHandler, ItsOutputIsLoggedAsPrintableText) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"q"}, 1));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("q", R"({"stderr_text": "\u001b[31mred\u001b[0m\u0007 bell\r cr\ttab"})");
  ASSERT_TRUE(f.wait_state(id, "done")) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("job=" + id + ": \\x1b[31mred\\x1b[0m\\x07 bell\\x0d cr\ttab \xef\xbf\xbd end"))
      << daemon.output();
  EXPECT_EQ(daemon.output().find('\x1b'), std::string::npos);
}
