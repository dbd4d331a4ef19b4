// The Redis source against a real redis-server: Resque interoperability, the job
// lifecycle (done, retry, dead, delayed, unique, priority), reliable fetch when a
// worker dies, and a Redis restart during a drain.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <memory>
#include <set>
#include <sstream>

#include "harness/jobs_harness.hpp"
#include "harness/redis_server.hpp"

using namespace harness;

namespace {

std::string redis_source(const RedisServer& redis, const std::string& settings = "") {
  return "sources:\n  shared: { type: redis, url: \"" + redis.url() + "\"" + settings + " }\n";
}

// What Resque.enqueue writes: the queue's name in the set, the job JSON on its list.
void push_as_resque_does(const RedisServer& redis, const std::string& queue, const std::string& job) {
  redis.cli({"SADD", "resque:queues", queue});
  redis.cli({"RPUSH", "resque:queue:" + queue, job});
}

const std::string fast_retry = "    retry: { max_attempts: 2, backoff: fixed, base: 50ms }\n";

}  // namespace

TEST(Redis, AJobEnqueuedTheWayAResqueClientDoesRunsWithItsClassAndArgs) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" + jobs_pool("w", persistent_handler(), {"echo"}, 1));
  Daemon daemon(f.config, f.env);
  // Exactly what Resque.enqueue(Echo, 1, "two") writes.
  push_as_resque_does(redis, "echo", R"({"class":"Echo","args":[1,"two"]})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1 && f.runs()[0].ended; })) << daemon.output();
  std::string log = read_file(f.job_log);
  EXPECT_NE(log.find(R"({"args":[1,"two"],"class":"Echo"})"), std::string::npos) << log;
  auto id = f.runs()[0].id;
  EXPECT_TRUE(f.wait_state(id, "done"));
  EXPECT_EQ(redis.cli({"GET", "resque:stat:processed"}), "1\n");
  EXPECT_EQ(redis.cli({"LLEN", "resque:queue:echo"}), "0\n");
}

TEST(Redis, ADeadJobIsInResquesFailedListWithTheFieldsResqueExpects) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" +
                           jobs_pool("w", persistent_handler(), {"q"}, 1, fast_retry));
  Daemon daemon(f.config, f.env);
  // A Resque job (class, args) whose extra member tells the test handler to fail.
  std::string id = f.enqueue("q", R"({"class":"Mailer","args":[7],"exit":3})");
  ASSERT_TRUE(f.wait_state(id, "dead")) << daemon.output();
  EXPECT_EQ(f.job(id)["attempts"], 2);
  EXPECT_EQ(redis.cli({"GET", "resque:stat:failed"}), "1\n");
  auto failure = nlohmann::json::parse(redis.cli({"LINDEX", "resque:failed", "0"}));
  for (const char* field : {"failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"})
    EXPECT_TRUE(failure.contains(field)) << field << " missing in " << failure;
  EXPECT_EQ(failure["queue"], "q");
  EXPECT_EQ(failure["payload"]["class"], "Mailer");
  EXPECT_EQ(failure["payload"]["args"][0], 7);
  EXPECT_TRUE(failure["backtrace"].is_array());
  // preforkctl retry brings it back.
  EXPECT_EQ(f.ctl({"retry", id}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 4u; })) << daemon.output();
}

// Found by a probe: Redis retried a dead job whose unique key another job held (SQLite
// and PostgreSQL refuse), and two jobs of one key then waited at once.
TEST(Redis, RetryOfAJobWhoseUniqueKeyIsTakenNamesTheHolder) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" + jobs_pool("w", exec_handler(), {"q1"}, 1));
  expect_retry_refused_while_its_unique_key_is_held(f, "q1");
}

TEST(Redis, DeletedJobsNeverRunAndRunningOnesAreLeftAlone) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  expect_deleted_jobs_never_run_and_running_ones_are_left_alone(f, "q");
}

// The list is emptied a few hundred jobs per script, so that a big queue never holds up
// the server; jobs a plain Resque client pushed (no record of their own) go too.
TEST(Redis, DeletingAQueueTakesEveryJobOnItsListAndNoOtherQueuesJob) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  push_as_resque_does(redis, "typo", R"({"class":"Mail","args":[1]})");
  f.enqueue_batch("typo", std::vector<std::string>(1200, "{}"));
  push_as_resque_does(redis, "typo", R"({"class":"Mail","args":[2]})");
  std::string other = f.enqueue("q", "{}");
  auto result = f.ctl({"delete", "--queue", "typo"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "deleted 1202 job(s) of queue typo\n");
  EXPECT_EQ(redis.cli({"LLEN", "resque:queue:typo"}), "0\n");
  EXPECT_EQ(redis.cli({"LLEN", "resque:queue:q"}), "1\n");
  EXPECT_EQ(f.state(other), "queued");
  // No record of a deleted job is left behind: only the other queue's job has one.
  EXPECT_EQ(redis.cli({"EVAL", "return #redis.call('KEYS', 'resque:preforkd:job:*')", "0"}), "1\n");
}

// A retry that comes due while the worker is busy waits in its queue's list (any claim
// moves it there). Found by a probe: its record still said retry, so `delete` removed
// only the record, and the list entry later ran as a new job.
TEST(Redis, ADueRetryWaitingInItsQueueIsDeletedForGood) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" +
                           jobs_pool("w", exec_handler(), {"q"}, 1,
                                     "    retry: { max_attempts: 3, backoff: fixed, base: 1s }\n"));
  // First the one that fails (its priority puts it at the head), then 4 s of work: it
  // comes due after 1 s, and the next claim moves it behind the work still waiting.
  std::string flaky = f.enqueue("q", R"({"fail_until_attempt": 2})", {"--priority", "5"});
  f.enqueue_batch("q", std::vector<std::string>(40, R"({"sleep_ms": 100})"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] {
    return f.runs().size() >= 2 && redis.cli({"ZCARD", "resque:preforkd:delayed"}) == "0\n";
  })) << daemon.output();
  EXPECT_EQ(f.state(flaky), "queued");  // it waits in the list like any job
  auto result = f.ctl({"delete", flaky});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  ASSERT_TRUE(f.wait_done("q", 40, 30s)) << daemon.output();
  auto runs = f.runs();
  EXPECT_EQ(runs.size(), 41u);  // the failed run, and the work: no second run of it
  EXPECT_EQ(runs.front().id, flaky);
  EXPECT_EQ(redis.cli({"LLEN", "resque:queue:q"}), "0\n");
}

// DEAD counts the dead jobs there are: a retried or deleted one leaves it.
TEST(Redis, ADeadJobRetriedOrDeletedLeavesTheDeadCount) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  std::string first = f.enqueue("q", R"({"exit": 1})", {"--max-attempts", "1"});
  std::string second = f.enqueue("q", R"({"exit": 1})", {"--max-attempts", "1"});
  {
    Daemon daemon(f.config, f.env);
    ASSERT_TRUE(f.wait_state(second, "dead")) << daemon.output();
    ASSERT_TRUE(f.wait_state(first, "dead")) << daemon.output();
  }
  EXPECT_EQ(f.stats("q")["dead"], 2);
  EXPECT_EQ(f.ctl({"retry", first}).exit_code, 0);
  EXPECT_EQ(f.stats("q")["dead"], 1);
  EXPECT_EQ(f.stats("q")["queued"], 1);
  EXPECT_EQ(f.ctl({"delete", second}).exit_code, 0);
  EXPECT_EQ(f.stats("q")["dead"], 0);
}

// SCAN's MATCH takes the namespace as a pattern: "app[1]" matched no key of its own, and
// `jobs` listed nothing, `delete --queue` missed the jobs due later.
TEST(Redis, ANamespaceWithGlobCharactersIsMatchedAsWritten) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis, ", namespace: \"app[1]\"") + "pools:\n" +
                           jobs_pool("w", exec_handler(), {"q"}, 1));
  f.enqueue("q", "{}", {"--delay", "1h"});
  f.enqueue("q", "{}");
  auto listed = f.ctl({"jobs", "--json"});
  EXPECT_EQ(nlohmann::json::parse(listed.out).size(), 2u) << listed.out;
  auto result = f.ctl({"delete", "--queue", "q"});
  EXPECT_EQ(result.out, "deleted 2 job(s) of queue q\n") << result.err;
}

TEST(Redis, RetriesDelayedJobsUniqueKeysAndPriorityWork) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" +
                           jobs_pool("w", persistent_handler(), {"q"}, 1,
                                     "    retry: { max_attempts: 3, backoff: fixed, base: 100ms }\n"));
  // Before the daemon runs: priority and unique are decided at enqueue.
  std::string normal = f.enqueue("q", "{}");
  std::string urgent = f.enqueue("q", "{}", {"--priority", "5"});
  std::string unique = f.enqueue("q", "{}", {"--unique", "k1"});
  auto again = f.ctl({"enqueue", "q", "--payload", "{}", "--unique", "k1"});
  EXPECT_EQ(again.out, unique + "\n");
  EXPECT_NE(again.err.find("already holds unique key"), std::string::npos);
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(f.wait_state(unique, "done")) << daemon.output();
  auto runs = f.runs();
  ASSERT_GE(runs.size(), 3u);
  EXPECT_EQ(runs[0].id, urgent);
  EXPECT_EQ(runs[1].id, normal);

  std::string flaky = f.enqueue("q", R"({"fail_until_attempt": 3})");
  ASSERT_TRUE(f.wait_state(flaky, "done")) << daemon.output();
  EXPECT_EQ(f.job(flaky)["attempts"], 3);

  std::string far = f.enqueue("q", "{}", {"--at", "2099-01-02T03:04:05Z"});
  std::string later = f.enqueue("q", "{}", {"--delay", "1s"});
  ASSERT_TRUE(f.wait_state(later, "done", 60s)) << daemon.output();
  EXPECT_EQ(f.state(far), "queued");
  auto job = f.job(later);
  EXPECT_GE(job["started_at"].get<std::string>(), job["run_at"].get<std::string>());
}

TEST(Redis, AWorkerKilledMidJobHasItsJobRecoveredAndRunAgain) {
  RedisServer redis;
  JobsFixture f;
  // A long lease: recovery must come from the dead pid being noticed, not from expiry.
  write_file(f.config, redis_source(redis, ", lease: 60s") + "pools:\n" +
                           jobs_pool("w", exec_handler(), {"q"}, 1, "    err_respawn_interval: 10ms\n"));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("q", R"({"sleep_ms": 60000})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
  EXPECT_EQ(f.state(id), "running");
  ASSERT_EQ(daemon.children().size(), 1u);
  ::kill(daemon.children().front(), SIGKILL);
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 2; }, 20s)) << daemon.output();
  EXPECT_EQ(f.runs()[1].id, id);
  EXPECT_EQ(f.runs()[1].attempt, 2);
  EXPECT_TRUE(daemon.wait_output("job " + id + ": lease expired (held by ")) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("; queued again")) << daemon.output();
}

TEST(Redis, AKilledWorkersBatchIsNotChargedAndEachOfItsJobsThenRunsAlone) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis, ", prefetch: 5") + "pools:\n" +
                           jobs_pool("w", exec_handler(), {"q"}, 1,
                                     "    err_respawn_interval: 10ms\n    retry: { max_attempts: 1 }\n"));
  expect_a_killed_batch_charges_only_the_job_that_kills_a_worker_alone(f, "q");
}

TEST(Redis, AJobWhoseWorkerDiedIsClaimedAloneFromThenOn) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis, ", prefetch: 5") + "pools:\n" +
                           jobs_pool("w", exec_handler(), {"q"}, 1,
                                     "    err_respawn_interval: 2s\n    retry: { max_attempts: 2 }\n"));
  expect_a_job_whose_worker_died_is_claimed_alone_from_then_on(f, "q");
}

TEST(Redis, TermGivesTheJobBackAndQuitLetsItFinish) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" +
                           jobs_pool("w", exec_handler(), {"q"}, 1, "    timeout_grace: 500ms\n"));
  std::string id;
  {
    Daemon daemon(f.config, f.env);
    id = f.enqueue("q", R"({"sleep_ms": 30000})");
    ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
    daemon.signal(SIGTERM);
    EXPECT_EQ(exit_code(daemon.wait_exit(20s)), 0) << daemon.output();
  }
  EXPECT_EQ(f.state(id), "queued");
  EXPECT_EQ(f.job(id)["attempts"], 0);
  EXPECT_EQ(redis.cli({"LLEN", "resque:queue:q"}), "1\n");
}

TEST(Redis, ARedisRestartDuringADrainLosesNoJob) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis, ", lease: 2s") + "pools:\n" +
                           jobs_pool("w", persistent_handler(), {"q"}, 2,
                                     "    retry: { max_attempts: 50, backoff: fixed, base: 10ms }\n"));
  auto ids = f.enqueue_batch("q", std::vector<std::string>(2000, R"({"sleep_ms": 1})"));
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(wait_until([&] { return f.runs().size() >= 300; })) << daemon.output();
  redis.restart();
  ASSERT_TRUE(f.wait_done("q", 2000, 120s)) << f.stats("q")["done"] << "\n" << daemon.output();
  auto ends = f.ends_per_job();
  for (const auto& id : ids) EXPECT_GE(ends[id], 1) << "job " << id;
  EXPECT_TRUE(daemon.wait_output("reachable again")) << daemon.output();
  // One line per outage per worker, not one per retry.
  EXPECT_LE(daemon.count_output("reconnecting with backoff"), 4u) << daemon.output();
}

// A job JSON carrying a preforkd id that has no record here: resque-web's "retry" of an
// old failure (its record expired after keep_done), or a job from another namespace. It
// used to run and then stay "running" in its worker's processing list for ever (acks
// look the job up by its record), and run again at every recovery. It is a new job now.
TEST(Redis, AJobWithAnIdThatHasNoRecordRunsAsANewJob) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  Daemon daemon(f.config, f.env);
  push_as_resque_does(redis, "q", R"({"class":"X","args":[2],"preforkd":{"id":"77"}})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1 && f.runs()[0].ended; })) << daemon.output();
  std::string id = f.runs()[0].id;
  EXPECT_NE(id, "77");
  EXPECT_TRUE(f.wait_state(id, "done")) << daemon.output();
  EXPECT_TRUE(wait_until([&] { return redis.cli({"GET", "resque:stat:processed"}) == "1\n"; }));
  // Nothing left in any worker's processing list.
  std::string lists = redis.cli({"KEYS", "resque:preforkd:processing:*"});
  std::istringstream names(lists);
  for (std::string name; std::getline(names, name);) {
    if (!name.empty()) {
      EXPECT_EQ(redis.cli({"LLEN", name}), "0\n") << name;
    }
  }
}

TEST(Redis, BadSettingsAreConfigErrorsWithPositions) {
  JobsFixture f;
  write_file(f.config,
             "sources:\n  r: { type: redis, url: \"http://x\", prefetch: 0 }\n"
             "pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  auto check = run({preforkd_bin(), "-c", f.config, "--check"});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.err.find(f.config + ":2:26: sources.r.url: 'http://x' must start with redis://"),
            std::string::npos) << check.err;
  EXPECT_NE(check.err.find(f.config + ":2:48: sources.r.prefetch: must be a number from 1 to 1000"),
            std::string::npos) << check.err;
}

TEST(Redis, AnUnreachableServerIsRefusedAtStart) {
  JobsFixture f;
  int port = free_tcp_port();
  write_file(f.config, "sources:\n  r: { type: redis, url: \"redis://127.0.0.1:" + std::to_string(port) +
                           "/0\", timeout: 1s }\npools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  Daemon daemon(f.config, f.env);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 1) << daemon.output();
  EXPECT_NE(daemon.output().find("refusing to start: " + f.config + ":2:3: source 'r': redis 127.0.0.1:" + std::to_string(port) +
                                 "/0: cannot connect"), std::string::npos) << daemon.output();
}

namespace {

// A jobs pool on the default source, running; the test then HUPs it into a file whose
// source is a Redis that accepts connections and never answers.
struct HungRedisReload {
  explicit HungRedisReload(const std::string& pool_extra = "")
      : pools("pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1, pool_extra)) {
    write_file(f.config, pools);
    daemon = std::make_unique<Daemon>(f.config, f.env);
  }
  void reload_with_hung_source(const std::string& timeout) {
    write_file(f.config, "sources:\n  r: { type: redis, url: \"redis://127.0.0.1:" +
                             std::to_string(hung.port()) + "/0\", timeout: " + timeout + " }\n" +
                             pools);
    daemon->signal(SIGHUP);
  }
  // The check process's pid, from the log line that announces it.
  pid_t checker() const {
    std::string announced = "reload: checking the job sources (pid ";
    if (!daemon->wait_output(announced)) return 0;
    std::string log = daemon->output();
    return std::stoi(log.substr(log.rfind(announced) + announced.size()));
  }
  // Where the log says `needle` first; npos if nowhere.
  size_t logged_at(const std::string& needle) const { return daemon->output().find(needle); }

  SilentServer hung;
  JobsFixture f;
  std::string pools;
  std::unique_ptr<Daemon> daemon;
};

// The pipes a process holds beyond stdin, stdout and stderr, as /proc names them.
std::set<std::string> pipes_of(pid_t pid) {
  std::set<std::string> pipes;
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    if (std::stoi(fd.path().filename().string()) <= 2) continue;
    std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (target.rfind("pipe:", 0) == 0) pipes.insert(target);
  }
  return pipes;
}

}  // namespace

// A reload checks the new file's sources before it replaces anything. Against a Redis
// that accepts and never answers, that check waits for the source's timeout: it runs
// in a process of its own, and the supervisor respawns meanwhile (it used to wait for
// the timeout first). A HUP during the check is not lost: it reloads again after.
TEST(Redis, AReloadWaitingForAHungServerLeavesTheSupervisorResponsive) {
  HungRedisReload t;
  Daemon& daemon = *t.daemon;
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  pid_t worker = daemon.children().front();

  t.reload_with_hung_source("3s");
  ASSERT_GT(t.checker(), 0) << daemon.output();
  ::kill(worker, SIGKILL);
  ASSERT_TRUE(wait_until([&] {
    auto now = daemon.children();
    return now.size() == 1 && now.front() != worker;
  })) << daemon.output();
  pid_t replacement = daemon.children().front();
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.wait_output("reloading again once it has ended")) << daemon.output();

  // The check ends with the source's timeout; the second HUP's reload follows.
  ASSERT_TRUE(daemon.wait_output("reload requested", 15s, 2)) << daemon.output();
  size_t failed = t.logged_at("reload failed");
  ASSERT_NE(failed, std::string::npos) << daemon.output();
  EXPECT_LT(t.logged_at("spawned pool=w pid=" + std::to_string(replacement)), failed)
      << "the respawn waited for the check\n" << daemon.output();
  EXPECT_GT(daemon.output().rfind("reload requested"), failed) << daemon.output();

  // A stop abandons the second check at once.
  ASSERT_TRUE(daemon.wait_output("reload: checking the job sources", 15s, 2)) << daemon.output();
  daemon.signal(SIGTERM);
  EXPECT_EQ(exit_code(daemon.wait_exit(10s)), 0) << daemon.output();
  EXPECT_NE(t.logged_at("reload abandoned: its source check"), std::string::npos) << daemon.output();
  EXPECT_EQ(t.logged_at("generation 2"), std::string::npos) << daemon.output();
}

TEST(Redis, AReloadWhoseSourceTimesOutKeepsTheOldPoolAndSaysWhere) {
  HungRedisReload t;
  Daemon& daemon = *t.daemon;
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  auto before = daemon.children();

  t.reload_with_hung_source("500ms");
  ASSERT_TRUE(daemon.wait_output("  " + t.f.config + ":2:3: source 'r': redis 127.0.0.1:" +
                                 std::to_string(t.hung.port()) +
                                 "/0: SCRIPT: no answer within the source's timeout (500ms)"))
      << daemon.output();
  EXPECT_NE(t.logged_at("reload failed; still running generation 1"), std::string::npos)
      << daemon.output();
  EXPECT_EQ(daemon.children(), before);
  // The old pool still serves its source (preforkctl reads the file: put the old one back).
  write_file(t.f.config, t.pools);
  std::string id = t.f.enqueue("q", "{}");
  EXPECT_TRUE(t.f.wait_state(id, "done")) << daemon.output();
}

// A child forked by the supervisor itself while a check runs must not hold the check's
// report pipe (a forked child never execs, so close-on-exec does not close it).
TEST(Redis, AChildForkedDuringASourceCheckDoesNotKeepItsPipe) {
  HungRedisReload t("    fork_server: false\n");
  Daemon& daemon = *t.daemon;
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  pid_t worker = daemon.children().front();

  t.reload_with_hung_source("120s");
  pid_t checker = t.checker();
  ASSERT_GT(checker, 0) << daemon.output();
  // Once it has closed what it inherited, the check process holds only its report pipe.
  std::set<std::string> report_pipe;
  ASSERT_TRUE(wait_until([&] { return (report_pipe = pipes_of(checker)).size() == 1; }))
      << report_pipe.size();
  ::kill(worker, SIGKILL);
  ASSERT_TRUE(wait_until([&] {
    auto now = daemon.children();
    return now.size() == 1 && now.front() != worker;
  })) << daemon.output();
  auto inherited = pipes_of(daemon.children().front());
  EXPECT_EQ(inherited.count(*report_pipe.begin()), 0u);
  daemon.signal(SIGTERM);
  EXPECT_EQ(exit_code(daemon.wait_exit(10s)), 0) << daemon.output();
}

TEST(Redis, AJobThatEndsAfterAnOutageFreesItsUniqueKeyAndExpires) {
  // The lease's heartbeat during the job meets the outage and the worker reconnects, so
  // the result is written by a finish of its own on the new connection. That finish
  // kept the unique key held for ever, and the record without its keep_done expiry:
  // every later enqueue with that key said "already holds" and added nothing.
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis, ", lease: 3s") + "pools:\n" +
                           jobs_pool("w", exec_handler(), {"q"}, 1));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("q", R"({"sleep_ms": 2500})", {"--unique", "k1"});
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
  redis.restart();
  ASSERT_TRUE(f.wait_state(id, "done", 30s)) << daemon.output();
  EXPECT_EQ(redis.cli({"EXISTS", "resque:preforkd:unique:k1"}), "0\n");
  EXPECT_NE(redis.cli({"PTTL", "resque:preforkd:job:" + id}), "-1\n");
  std::string again = f.enqueue("q", "{}", {"--unique", "k1"});
  EXPECT_NE(again, id);
  EXPECT_TRUE(f.wait_state(again, "done")) << daemon.output();
}

TEST(Redis, ACopyOfAJobThatRanGetsAnIdOfItsOwn) {
  // A payload carrying the id of a job that is running or finished (a copy pushed by
  // hand, or given to preforkctl enqueue) shared that job's record: it ran as its next
  // attempt, its ack failed, and it stayed "running" in a processing list for ever.
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  Daemon daemon(f.config, f.env);
  std::string first = f.enqueue("q", R"({"class":"X","args":[1]})");
  ASSERT_TRUE(f.wait_state(first, "done")) << daemon.output();
  std::string copy = R"({"class":"X","args":["copy"],"preforkd":{"id":")" + first + R"("}})";
  std::string by_ctl = f.enqueue("q", copy);
  EXPECT_NE(by_ctl, first);
  push_as_resque_does(redis, "q", copy);
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 3 && f.runs()[2].ended; })) << daemon.output();
  std::set<std::string> ids;
  for (const auto& run : f.runs()) ids.insert(run.id);
  EXPECT_EQ(ids.size(), 3u) << "each run under an id of its own";
  for (const auto& id : ids) EXPECT_TRUE(f.wait_state(id, "done")) << id << "\n" << daemon.output();
  EXPECT_EQ(f.job(first)["attempts"], 1);
}

TEST(Redis, ALongRunOfSpacesInAPayloadCostsRedisNothingSpecial) {
  // Lua's '^(.-)%s*$' took time in the square of a run's length (40,000 spaces: 11 s),
  // with the whole Redis server blocked and every claim timing out meanwhile.
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  Daemon daemon(f.config, f.env);
  std::string spaces(40000, ' ');
  push_as_resque_does(redis, "q", R"({"class":"X","args":["a)" + spaces + R"(b"]})" + spaces);
  std::string by_ctl = f.enqueue("q", R"({"class":"X","args":["c)" + spaces + R"(d"]})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 2 && f.runs()[1].ended; })) << daemon.output();
  EXPECT_TRUE(f.wait_state(by_ctl, "done")) << daemon.output();
  EXPECT_EQ(daemon.count_output("no answer within"), 0u) << daemon.output();
  EXPECT_EQ(daemon.count_output("reconnecting"), 0u) << daemon.output();
}

TEST(Redis, ABatchGivenBackOnTermIsInItsQueueInTheOrderItWasTaken) {
  // Each job went back to the head of the queue one by one: the batch came back
  // reversed, breaking Resque's first-in, first-out order (found by a probe).
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis, ", prefetch: 4") + "pools:\n" +
                           jobs_pool("w", exec_handler(), {"q"}, 1, "    timeout_grace: 500ms\n"));
  std::vector<std::string> ids = f.enqueue_batch("q", std::vector<std::string>(5, R"({"sleep_ms": 30000})"));
  {
    Daemon daemon(f.config, f.env);
    ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
    daemon.signal(SIGTERM);
    EXPECT_EQ(exit_code(daemon.wait_exit(20s)), 0) << daemon.output();
  }
  std::istringstream queue(redis.cli({"LRANGE", "resque:queue:q", "0", "-1"}));
  std::vector<std::string> order;
  for (std::string line; std::getline(queue, line);) {
    auto at = line.find(R"("preforkd":{"id":")");
    if (at != std::string::npos) order.push_back(line.substr(at + 18, line.find('"', at + 18) - at - 18));
  }
  EXPECT_EQ(order, ids);
  for (const auto& id : ids) EXPECT_EQ(f.job(id)["attempts"], 0) << id;
}

// As Postgres.ALostConnectionLosesNoDeferredResultAndNoAttemptOfAJobNotStarted: a
// worker holding finished jobs whose ack waits for its next claim, and jobs prefetched
// and not started, loses its connection (CLIENT KILL). With one attempt each, none may
// run twice or end dead.
TEST(Redis, ALostConnectionLosesNoDeferredAckAndNoAttemptOfAJobNotStarted) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis, ", prefetch: 10, lease: 3s") + "pools:\n" +
                           jobs_pool("w", persistent_handler(), {"bulk"}, 1, "    retry: { max_attempts: 1 }\n"));
  Daemon daemon(f.config, f.env);
  auto ids = f.enqueue_batch("bulk", std::vector<std::string>(4, R"({"sleep_ms": 1500})"));
  ASSERT_TRUE(wait_until([&] { return f.ends_per_job()[ids[0]] == 1; }, 30s)) << daemon.output();
  redis.cli({"CLIENT", "KILL", "TYPE", "normal"});
  // Waited for job by job: `stats` reads the queue, the workers and their lists one after
  // the other, so a job given back and claimed again in between is counted nowhere, and
  // "nothing queued or running" held for a moment while two jobs were still to run.
  for (const auto& id : ids) ASSERT_TRUE(f.wait_state(id, "done", 60s)) << "job " << id << "\n" << daemon.output();
  auto ends = f.ends_per_job();
  for (const auto& id : ids) {
    EXPECT_EQ(f.state(id), "done") << "job " << id;
    EXPECT_EQ(ends[id], 1) << "job " << id;
    EXPECT_EQ(f.job(id)["attempts"], 1) << "job " << id;
  }
  EXPECT_TRUE(daemon.wait_output("1 job(s) finished before the failure reported again (one whose lease ran out meanwhile may have run again elsewhere), 2 leased and not started given back"))
      << daemon.output();
}

// A job that is no JSON object (pushed by another client) cannot carry its id, so its
// attempts cannot be counted: it used to get a new id at every claim and be retried for
// ever. It is now dead at once, in Resque's failed list, without a run.
TEST(Redis, AJobThatIsNoJsonObjectIsDeadAtOnceNotRetriedForEver) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" +
                           jobs_pool("w", persistent_handler(), {"q"}, 1,
                                     "    retry: { max_attempts: 3, backoff: fixed, base: 10ms }\n"));
  Daemon daemon(f.config, f.env);
  push_as_resque_does(redis, "q", R"(["fail", 1])");
  std::string ok = f.enqueue("q", "{}");  // behind it, and run as usual
  ASSERT_TRUE(f.wait_state(ok, "done")) << daemon.output();
  ASSERT_TRUE(wait_until([&] { return redis.cli({"LLEN", "resque:failed"}) == "1\n"; })) << daemon.output();
  auto failure = nlohmann::json::parse(redis.cli({"LINDEX", "resque:failed", "0"}));
  EXPECT_EQ(failure["payload"], nlohmann::json::parse(R"(["fail", 1])")) << failure;
  EXPECT_EQ(failure["queue"], "q") << failure;
  EXPECT_NE(failure["error"].get<std::string>().find("not a JSON object"), std::string::npos) << failure;
  EXPECT_EQ(f.runs().size(), 1u) << "only the object job ran";
  EXPECT_EQ(redis.cli({"ZCARD", "resque:preforkd:delayed"}), "0\n");
  EXPECT_EQ(redis.cli({"LLEN", "resque:queue:q"}), "0\n");
  EXPECT_EQ(f.stats("q")["dead"], 1) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("is dead without a run")) << daemon.output();
}

// A queue key that is no list (SET by mistake) used to fail every claim with WRONGTYPE:
// the workers reconnected every 100 ms and the pool's other queues starved. It is now
// skipped with one error line per worker; the other queues are served.
TEST(Redis, AQueueKeyOfAnotherTypeIsSkippedAndTheOtherQueuesServed) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" +
                           jobs_pool("w", persistent_handler(), {"broken", "good"}, 1));
  redis.cli({"SET", "resque:queue:broken", "not a list"});
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("good", "{}");
  ASSERT_TRUE(f.wait_state(id, "done")) << daemon.output();
  // A delayed job of that queue falls due: it waits in the delayed set, it is not lost.
  std::string later = f.enqueue("good", "{}", {"--delay", "200ms"});
  redis.cli({"ZADD", "resque:preforkd:delayed", "0", "broken\n{\"class\":\"X\",\"args\":[]}"});
  ASSERT_TRUE(f.wait_state(later, "done")) << daemon.output();
  EXPECT_EQ(redis.cli({"ZCARD", "resque:preforkd:delayed"}), "1\n");
  EXPECT_TRUE(daemon.wait_output("queue 'broken' is skipped: its key resque:queue:broken is not a list"))
      << daemon.output();
  EXPECT_EQ(daemon.count_output("is skipped"), 1u) << daemon.output();
  EXPECT_EQ(daemon.count_output("reconnecting with backoff"), 0u) << daemon.output();
  EXPECT_EQ(redis.cli({"GET", "resque:queue:broken"}), "not a list\n");
}

// Found by a probe: one job (or queue name) with a byte that is not UTF-8, pushed by a
// Resque client, made `job --json`, `jobs --json` and `stats --json` abort (exit 134).
TEST(Redis, JsonListingsShowBytesThatAreNotUtf8InsteadOfAborting) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis) + "pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  Daemon daemon(f.config, f.env);
  push_as_resque_does(redis, "q", "{\"class\":\"G\",\"args\":[\"\xff\xfe\"]}");
  redis.cli({"SADD", "resque:queues", "bad\xffq"});
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1 && f.runs()[0].ended; })) << daemon.output();
  std::string id = f.runs()[0].id;
  ASSERT_TRUE(f.wait_state(id, "done")) << daemon.output();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"job", id, "--json"}, {"jobs", "--queue", "q", "--json"}, {"stats", "--json"}}) {
    auto result = f.ctl(args);
    EXPECT_EQ(result.exit_code, 0) << args[0] << ": " << result.err;
    EXPECT_FALSE(nlohmann::json::parse(result.out, nullptr, false).is_discarded()) << result.out;
    EXPECT_NE(result.out.find("\xef\xbf\xbd"), std::string::npos) << args[0] << ": " << result.out;
  }
}

// Found by a probe: a claim sent while Redis was paused, and given up after `timeout`,
// ran once Redis answered again, on a connection its worker had already replaced. The
// job waited for its lease and was then charged an attempt it never had: with
// max_attempts 1, dead without a run. Now the worker takes such a job back at once.
TEST(Redis, AClaimThatRanAfterItsWorkerGaveUpOnItChargesNothing) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis, ", timeout: 500ms, lease: 4s") + "pools:\n" +
                           jobs_pool("w", exec_handler(), {"q"}, 2,
                                     "    retry: { max_attempts: 1 }\n    err_respawn_interval: 10ms\n"));
  Daemon daemon(f.config, f.env);
  auto ids = f.enqueue_batch("q", std::vector<std::string>(40, R"({"sleep_ms": 20})"));
  ASSERT_TRUE(wait_until([&] { return f.runs().size() >= 4; })) << daemon.output();
  ASSERT_EQ(::kill(redis.pid(), SIGSTOP), 0);
  // Each worker claims as it finishes its job, and gives that claim up after 500ms.
  bool gave_up = daemon.wait_output("no answer within the source's timeout", 10s, 2);
  ::kill(redis.pid(), SIGCONT);
  ASSERT_TRUE(gave_up) << daemon.output();
  ASSERT_TRUE(f.wait_done("q", 40, 60s)) << f.stats("q")["dead"] << " dead\n" << daemon.output();
  for (const auto& id : ids) EXPECT_EQ(f.job(id)["attempts"], 1) << "job " << id;
  EXPECT_EQ(f.stats("q")["dead"], 0);
  EXPECT_TRUE(daemon.wait_output("claimed on a connection its worker had already given up, never started: "
                                 "attempt not counted)"))
      << daemon.output();
}

// Found by a probe (on PostgreSQL, a COMMIT whose answer a restart cut off): an enqueue
// whose answer never came failed as if nothing had been written, and a caller that
// enqueued again ran the jobs twice. It now says the jobs may be there, with exit 3.
TEST(Redis, AnEnqueueWhoseAnswerNeverCameSaysTheJobsMayBeThere) {
  RedisServer redis;
  JobsFixture f;
  write_file(f.config, redis_source(redis, ", timeout: 500ms") + "pools:\n" + jobs_pool("w", exec_handler(), {"q"}, 1));
  ASSERT_EQ(f.ctl({"migrate"}).exit_code, 0);
  // Write commands (the enqueue script) wait; the rest (loading the scripts) go on.
  redis.cli({"CLIENT", "PAUSE", "30000", "WRITE"});
  auto lost = f.ctl({"enqueue", "q", "--payload", "{}"});
  redis.cli({"CLIENT", "UNPAUSE"});
  EXPECT_EQ(lost.exit_code, 3) << lost.err;
  EXPECT_NE(lost.err.find("no answer within the source's timeout (500ms): the server's answer did not come, so "
                          "the 1 job(s) may or may not have been enqueued. Look (preforkctl jobs --queue q) before "
                          "you enqueue again"),
            std::string::npos)
      << lost.err;
  EXPECT_EQ(f.ctl({"enqueue", "q", "--payload", "{}"}).exit_code, 0);
}
