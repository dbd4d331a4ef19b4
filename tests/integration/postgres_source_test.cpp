// The PostgreSQL source through the real preforkctl and preforkd against a throwaway
// server: done/retry/dead, delayed, priority, unique keys, `retry`, lease expiry after
// a worker is killed, LISTEN/NOTIFY wake-up, concurrent migration, connection loss /
// server restarts during a drain, and `prefetch` with deferred acks.
#include <gtest/gtest.h>
#include <postgresql/libpq-fe.h>
#include <signal.h>

#include <memory>
#include <set>

#include "harness/jobs_harness.hpp"
#include "harness/postgres_server.hpp"

using namespace harness;

namespace {

const std::string fast_retry = "    retry: { max_attempts: 3, backoff: fixed, base: 50ms }\n";

struct PgJobs {
  PostgresServer pg;
  JobsFixture f;

  // A config with one postgres source `pg` (extra settings inline) and `pools` YAML.
  void configure(const std::string& pools, const std::string& source_extra = "") const {
    write_file(f.config, "node: host-a\nsources:\n  pg: { type: postgres, url: \"" + pg.url() + "\"" +
                             source_extra + " }\npools:\n" + pools);
  }
  int64_t count(const std::string& where) const {
    return std::stoll(pg.query("SELECT count(*) FROM preforkd_jobs WHERE " + where));
  }
};

// Five jobs over q1 and q2 with mixed priorities, then one worker: q1 before q2,
// higher priority first, then the older job.
void expect_strict_queue_order(const PgJobs& t) {
  std::string low_q2 = t.f.enqueue("q2", "{}", {"--priority", "100"});
  std::string low = t.f.enqueue("q1", "{}", {"--priority", "-5"});
  std::string mid = t.f.enqueue("q1", "{}");
  std::string mid2 = t.f.enqueue("q1", "{}");
  std::string high = t.f.enqueue("q1", "{}", {"--priority", "10"});
  Daemon daemon(t.f.config, t.f.env);
  ASSERT_TRUE(t.f.wait_state(low_q2, "done")) << daemon.output();
  auto runs = t.f.runs();
  ASSERT_EQ(runs.size(), 5u);
  EXPECT_EQ(runs[0].id, high);
  EXPECT_EQ(runs[1].id, mid);
  EXPECT_EQ(runs[2].id, mid2);
  EXPECT_EQ(runs[3].id, low);
  EXPECT_EQ(runs[4].id, low_q2);
}

}  // namespace

TEST(Postgres, JobsEndDoneRetriedOrDeadAndRetryRequeuesADeadJob) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 2, fast_retry));
  Daemon daemon(t.f.config, t.f.env);
  std::string ok = t.f.enqueue("q1", R"({"hello": "world"})");
  std::string flaky = t.f.enqueue("q1", R"({"fail_until_attempt": 2})");
  std::string permanent = t.f.enqueue("q1", R"({"permanent": true})");
  std::string failing = t.f.enqueue("q1", R"({"exit": 1})", {"--max-attempts", "2"});
  for (const auto& id : {ok, flaky}) ASSERT_TRUE(t.f.wait_state(id, "done")) << daemon.output();
  for (const auto& id : {permanent, failing}) ASSERT_TRUE(t.f.wait_state(id, "dead")) << daemon.output();

  auto done = t.f.job(ok);
  EXPECT_EQ(done["attempts"], 1);
  EXPECT_EQ(done["payload"], nlohmann::json::parse(R"({"hello": "world"})"));
  EXPECT_TRUE(done["locked_by"].is_null());
  EXPECT_TRUE(done["lease_until"].is_null());
  EXPECT_GE(done["finished_at"].get<std::string>(), done["started_at"].get<std::string>());
  EXPECT_EQ(t.f.job(flaky)["attempts"], 2);
  EXPECT_EQ(t.f.job(permanent)["attempts"], 3);  // an exec handler's failure: the pool's 3 attempts
  auto dead = t.f.job(failing);
  EXPECT_EQ(dead["attempts"], 2);
  EXPECT_EQ(dead["max_attempts"], 2);
  EXPECT_NE(dead["last_error"].get<std::string>().find("handler"), std::string::npos) << dead;

  // retry: a dead job back to queued with its attempts reset, and it runs again.
  auto retry = t.f.ctl({"retry", failing});
  EXPECT_EQ(retry.exit_code, 0) << retry.err;
  ASSERT_TRUE(wait_until([&] {
    auto runs = t.f.runs();
    return std::count_if(runs.begin(), runs.end(), [&](const JobRun& r) { return r.id == failing; }) == 4 &&
           t.f.state(failing) == "dead";
  })) << daemon.output();
  EXPECT_EQ(t.f.job(failing)["attempts"], 2);

  // The operator's mistakes.
  auto not_dead = t.f.ctl({"retry", ok});
  EXPECT_EQ(not_dead.exit_code, 1);
  EXPECT_NE(not_dead.err.find("job " + ok + " is done"), std::string::npos) << not_dead.err;
  auto unknown = t.f.ctl({"job", "123456"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no job with id 123456"), std::string::npos) << unknown.err;
  auto letters = t.f.ctl({"job", "abc"});
  EXPECT_EQ(letters.exit_code, 1);
  EXPECT_NE(letters.err.find("no job with id 'abc'"), std::string::npos) << letters.err;

  auto stats = t.f.stats("q1");
  EXPECT_EQ(stats["done"], 2);
  EXPECT_EQ(stats["dead"], 2);
  auto listed = t.f.ctl({"jobs", "--state", "dead", "--json"});
  EXPECT_EQ(nlohmann::json::parse(listed.out).size(), 2u) << listed.out;
}

// The test's library pool program is linked whole (preforkd_static_program) outside the
// sanitizer build: libpq, opened at run time, must load and work in it too.
TEST(Postgres, ALibraryPoolProgramRunsInProcessJobs) {
  PgJobs t;
  t.configure(jobs_pool("work", "in_process", {"inproc"}, 2, fast_retry));
  Daemon daemon(t.f.config, t.f.env, {}, test_inprocess_bin());
  std::string ok = t.f.enqueue("inproc", R"({"hello": "world"})");
  std::string flaky = t.f.enqueue("inproc", R"({"fail_until_attempt": 2})");
  for (const auto& id : {ok, flaky}) ASSERT_TRUE(t.f.wait_state(id, "done")) << daemon.output();
  EXPECT_EQ(t.f.job(ok)["attempts"], 1);
  EXPECT_EQ(t.f.job(flaky)["attempts"], 2);
}

TEST(Postgres, ADelayedJobDoesNotRunBeforeItsTime) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1));
  Daemon daemon(t.f.config, t.f.env);
  // Whatever the machine's load: the far one must still wait when the near one is done.
  std::string far = t.f.enqueue("q1", "{}", {"--at", "2099-01-02T03:04:05Z"});
  std::string id = t.f.enqueue("q1", "{}", {"--delay", "1500ms"});
  ASSERT_TRUE(t.f.wait_state(id, "done", 60s)) << daemon.output();
  auto done = t.f.job(id);
  EXPECT_GE(done["started_at"].get<std::string>(), done["run_at"].get<std::string>());
  EXPECT_GT(done["run_at"].get<std::string>(), done["created_at"].get<std::string>());
  EXPECT_EQ(t.f.job(far)["state"], "queued");
  EXPECT_EQ(t.f.job(far)["run_at"], "2099-01-02T03:04:05.000Z");
}

TEST(Postgres, QueuesAreServedInStrictOrderAndPriorityWithinAQueue) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1", "q2"}, 1));
  expect_strict_queue_order(t);
}

TEST(Postgres, AUniqueKeyDedupesWhileTheFirstIsQueued) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1));
  std::string first = t.f.enqueue("q1", "{}", {"--unique", "user-42"});
  auto second = t.f.ctl({"enqueue", "q1", "--payload", "{}", "--unique", "user-42"});
  EXPECT_EQ(second.exit_code, 0);
  EXPECT_EQ(second.out, first + "\n");
  EXPECT_NE(second.err.find("already holds unique key 'user-42'"), std::string::npos) << second.err;
  EXPECT_EQ(t.f.stats("q1")["queued"], 1);

  Daemon daemon(t.f.config, t.f.env);
  ASSERT_TRUE(t.f.wait_state(first, "done")) << daemon.output();
  std::string third = t.f.enqueue("q1", "{}", {"--unique", "user-42"});
  EXPECT_NE(third, first);
  EXPECT_EQ(t.f.job(third)["unique_key"], "user-42");
}

TEST(Postgres, RetryOfAJobWhoseUniqueKeyIsTakenNamesTheHolder) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1));
  expect_retry_refused_while_its_unique_key_is_held(t.f, "q1");
}

TEST(Postgres, DeletedJobsNeverRunAndRunningOnesAreLeftAlone) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1));
  expect_deleted_jobs_never_run_and_running_ones_are_left_alone(t.f, "q1");
}

// Found by a probe: one DELETE over a queue that workers are claiming from deadlocked
// with their claims (which write the previous results in the same statement), and the
// delete or a worker failed. Each job is now either deleted or runs to its end.
TEST(Postgres, DeletingAQueueWhileWorkersDrainItHoldsUpNobody) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 2));
  t.f.enqueue_batch("q1", std::vector<std::string>(30000, "{}"));
  Daemon daemon(t.f.config, t.f.env);
  ASSERT_TRUE(wait_until([&] { return t.count("state = 'done'") >= 20; })) << daemon.output();
  auto result = t.f.ctl({"delete", "--queue", "q1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ASSERT_EQ(result.out.rfind("deleted ", 0), 0u) << result.out;
  int64_t deleted = std::stoll(result.out.substr(8));
  EXPECT_GT(deleted, 0);
  EXPECT_EQ(t.count("true"), 30000 - deleted);  // those running then, and nothing else
  EXPECT_TRUE(wait_until([&] { return t.count("state <> 'done'") == 0; })) << daemon.output();
  EXPECT_EQ(daemon.count_output("deadlock"), 0u) << daemon.output();
  EXPECT_EQ(daemon.count_output("failed"), 0u) << daemon.output();
}

TEST(Postgres, ABatchIsOneTransactionInOrder) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1));
  std::vector<std::string> payloads;
  for (int i = 0; i < 12000; ++i) payloads.push_back(R"({"n": )" + std::to_string(i) + R"(, "s": "a\"b\\c"})");
  auto ids = t.f.enqueue_batch("q1", payloads);
  ASSERT_EQ(ids.size(), 12000u);
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_LT(std::stoll(ids[i - 1]), std::stoll(ids[i]));
  EXPECT_EQ(t.f.job(ids[11999])["payload"], nlohmann::json::parse(payloads[11999]));
  // A bad line refuses the whole batch.
  auto bad = t.f.ctl({"enqueue", "q1", "--batch"}, "{}\n{}\nnope\n");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(t.f.stats("q1")["queued"], 12000);
}

TEST(Postgres, AKilledWorkersJobComesBackWhenItsLeaseExpires) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1, "    err_respawn_interval: 10ms\n"),
              ", lease: 1s");
  Daemon daemon(t.f.config, t.f.env);
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  std::string id = t.f.enqueue("q1", R"({"sleep_ms": 2500})");
  ASSERT_TRUE(wait_until([&] { return t.f.runs().size() == 1; })) << daemon.output();
  pid_t worker = daemon.children().front();
  std::string held_by = t.f.job(id)["locked_by"];
  EXPECT_EQ(held_by, "host-a:" + std::to_string(worker));
  ::kill(worker, SIGKILL);
  // Another worker takes it after the lease runs out; the error says whose it was.
  ASSERT_TRUE(wait_until([&] {
    auto runs = t.f.runs();
    return std::any_of(runs.begin(), runs.end(), [](const JobRun& r) { return r.attempt == 2; });
  }, 20s)) << daemon.output();
  EXPECT_EQ(t.f.job(id)["last_error"], "lease expired (held by " + held_by + ")");
  ASSERT_TRUE(t.f.wait_state(id, "done", 20s)) << daemon.output();
  EXPECT_EQ(t.f.job(id)["attempts"], 2);
}

TEST(Postgres, AKilledWorkersBatchIsNotChargedAndEachOfItsJobsThenRunsAlone) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q"}, 1,
                        "    err_respawn_interval: 10ms\n    retry: { max_attempts: 1 }\n"),
              ", prefetch: 5, lease: 1s");
  expect_a_killed_batch_charges_only_the_job_that_kills_a_worker_alone(t.f, "q");
}

TEST(Postgres, AJobWhoseWorkerDiedIsClaimedAloneFromThenOn) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q"}, 1,
                        "    err_respawn_interval: 2s\n    retry: { max_attempts: 2 }\n"),
              ", prefetch: 5, lease: 1s");
  expect_a_job_whose_worker_died_is_claimed_alone_from_then_on(t.f, "q");
}

// A job table made before the `suspect` column: the next start adds it, and the jobs
// in the table run.
TEST(Postgres, AJobTableOfAnEarlierVersionGetsTheNewColumnAndKeepsItsJobs) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1));
  ASSERT_EQ(t.f.ctl({"migrate", "--source", "pg"}).exit_code, 0);
  t.pg.query("ALTER TABLE preforkd_jobs DROP COLUMN suspect");
  std::string id = t.f.enqueue("q1", "{}");  // preforkctl adds it back already
  t.pg.query("ALTER TABLE preforkd_jobs DROP COLUMN suspect");
  Daemon daemon(t.f.config, t.f.env);
  ASSERT_TRUE(t.f.wait_state(id, "done")) << daemon.output();
  EXPECT_EQ(t.pg.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'preforkd_jobs' "
                       "AND column_name = 'suspect'"),
            "1");
}

TEST(Postgres, AnIdlePoolIsWokenByNotifyNotByItsFetchTimeout) {
  PgJobs t;
  t.configure(jobs_pool("work", persistent_handler(), {"q1"}, 2) +
              jobs_pool("other", persistent_handler(), {"q2"}, 1));
  Daemon daemon(t.f.config, t.f.env);
  std::string first = t.f.enqueue("q1", "{}");
  ASSERT_TRUE(t.f.wait_state(first, "done")) << daemon.output();
  // The workers now sleep in poll(); a fetch wait is 30s, so only NOTIFY can make
  // these jobs done within the deadline below.
  for (int round = 0; round < 3; ++round) {
    std::string id = t.f.enqueue(round % 2 ? "q2" : "q1", "{}");
    EXPECT_TRUE(t.f.wait_state(id, "done", 10s)) << "round " << round << "\n" << daemon.output();
  }
}

TEST(Postgres, ManyProcessesMigrateAtOnceIntoANewSchema) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1), ", schema: jobs_ns, table: work_items");
  std::vector<std::unique_ptr<Process>> ctls;
  for (int i = 0; i < 8; ++i)
    ctls.push_back(std::make_unique<Process>(
        std::vector<std::string>{preforkctl_bin(), "-c", t.f.config, "migrate", "--source", "pg"},
        t.f.dir.file("migrate" + std::to_string(i) + ".out")));
  for (auto& ctl : ctls) {
    EXPECT_EQ(exit_code(ctl->wait_exit(30s)), 0) << ctl->output();
    EXPECT_NE(ctl->output().find("schema ready"), std::string::npos) << ctl->output();
  }
  EXPECT_EQ(t.pg.query("SELECT count(*) FROM pg_indexes WHERE schemaname = 'jobs_ns' "
                       "AND tablename = 'work_items'"),
            "6");  // the primary key and five of ours
  EXPECT_EQ(t.pg.query("SELECT to_regclass('public.preforkd_jobs') IS NULL"), "t");
  std::string id = t.f.enqueue("q1", "{}");
  EXPECT_EQ(t.pg.query("SELECT state FROM jobs_ns.work_items WHERE id = " + id), "queued");
}

TEST(Postgres, ProcessesThatFindTheTableBeingCreatedDoNotCallItForeign) {
  // A table committed while another process looked at the catalog was seen without its
  // columns ("exists and is not a preforkd job table (it lacks columns: id, ...)"):
  // to_regclass() reads the newest catalog, the column scan the statement's snapshot.
  PgJobs t;
  for (int round = 0; round < 12; ++round) {
    t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1),
                ", table: race_" + std::to_string(round));
    std::vector<std::unique_ptr<Process>> ctls;
    for (int i = 0; i < 6; ++i)
      ctls.push_back(std::make_unique<Process>(
          std::vector<std::string>{preforkctl_bin(), "-c", t.f.config, "migrate", "--source", "pg"},
          t.f.dir.file("race" + std::to_string(round) + "-" + std::to_string(i) + ".out")));
    for (auto& ctl : ctls) EXPECT_EQ(exit_code(ctl->wait_exit(30s)), 0) << ctl->output();
  }
}

TEST(Postgres, AForeignTableAndBadSettingsAreRefusedWithClearMessages) {
  PgJobs t;
  t.pg.query("CREATE TABLE users (id int, name text)");
  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1), ", table: users");
  auto foreign = t.f.ctl({"enqueue", "q1", "--payload", "{}"});
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_NE(foreign.err.find("table public.users exists and is not a preforkd job table"), std::string::npos)
      << foreign.err;
  EXPECT_EQ(t.pg.query("SELECT count(*) FROM users"), "0");

  t.configure(jobs_pool("work", exec_handler(), {"q1"}, 1), ", table: \"bad-name\", lease: 500ms");
  auto check = run({preforkd_bin(), "-c", t.f.config, "--check"});
  EXPECT_NE(check.exit_code, 0);
  EXPECT_NE(check.err.find("sources.pg.table: 'bad-name' is not a plain identifier"), std::string::npos) << check.err;
  EXPECT_NE(check.err.find("sources.pg.lease: must be at least 1s"), std::string::npos) << check.err;

  // Nothing listens on this port; the password never reaches a message.
  write_file(t.f.config, "sources:\n  pg: { type: postgres, url: \"postgresql://postgres:s3cret@127.0.0.1:1/x\" }\n"
                         "pools:\n" + jobs_pool("work", exec_handler(), {"q1"}, 1));
  Daemon daemon(t.f.config, t.f.env);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 1) << daemon.output();
  EXPECT_NE(daemon.output().find("refusing to start: " + t.f.config + ":2:3: source 'pg': postgres 127.0.0.1:1/x: cannot connect"),
            std::string::npos) << daemon.output();
  EXPECT_EQ(daemon.output().find("s3cret"), std::string::npos) << daemon.output();
}

TEST(Postgres, LostConnectionsAndAServerRestartDuringADrainLoseNothing) {
  PgJobs t;
  t.configure(jobs_pool("work", persistent_handler(), {"bulk"}, 3,
                        "    retry: { max_attempts: 50, backoff: fixed, base: 10ms }\n"),
              ", lease: 2s");
  Daemon daemon(t.f.config, t.f.env);
  auto ids = t.f.enqueue_batch("bulk", std::vector<std::string>(3000, R"({"sleep_ms": 1})"));
  ASSERT_TRUE(wait_until([&] { return t.count("state = 'done'") >= 500; }, 60s)) << daemon.output();
  // Every worker's connection is cut at once.
  t.pg.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'preforkd'");
  ASSERT_TRUE(wait_until([&] { return t.count("state = 'done'") >= 1500; }, 60s)) << daemon.output();
  // The server goes away for a while, then comes back on the same port.
  t.pg.stop();
  ASSERT_TRUE(daemon.wait_output("reconnecting with backoff", 15s, 2)) << daemon.output();
  // Found by a probe: only the outage's first error was logged (the dropped connection),
  // never what kept it going (here: nothing listens any more).
  ASSERT_TRUE(daemon.wait_output("' still failing after ", 15s)) << daemon.output();
  EXPECT_NE(daemon.output().find("cannot connect"), std::string::npos) << daemon.output();
  // libpq's messages run over lines indented with tabs: logged as one line, no tab left.
  EXPECT_EQ(daemon.output().find('\t'), std::string::npos) << daemon.output();
  t.pg.start();
  ASSERT_TRUE(wait_until([&] { return t.count("state = 'done'") == 3000; }, 90s)) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("reachable again", 15s)) << daemon.output();
  EXPECT_EQ(t.count("state <> 'done'"), 0);
  auto ends = t.f.ends_per_job();
  for (const auto& id : ids) ASSERT_GE(ends[id], 1) << "job " << id << " never finished";
  // No crash loop: the workers lived through it.
  EXPECT_EQ(daemon.count_output("respawn pool="), 0u) << daemon.output();
  EXPECT_TRUE(daemon.running());
}

// A worker holds a batch (prefetch): jobs it finished, whose 'done' waits for its next
// statement, and jobs not started yet. Its connection is cut. With one attempt each, a
// finished job run again, or a job never started charged for a run, would end dead.
TEST(Postgres, ALostConnectionLosesNoDeferredResultAndNoAttemptOfAJobNotStarted) {
  PgJobs t;
  t.configure(jobs_pool("work", persistent_handler(), {"bulk"}, 1, "    retry: { max_attempts: 1 }\n"),
              ", prefetch: 10, lease: 3s");
  Daemon daemon(t.f.config, t.f.env);
  auto ids = t.f.enqueue_batch("bulk", std::vector<std::string>(4, R"({"sleep_ms": 1500})"));
  // The first is done (its 'done' not written yet); during the second, the lease
  // heartbeat (every second) finds the connection gone, with two jobs not started.
  ASSERT_TRUE(wait_until([&] { return t.f.ends_per_job()[ids[0]] == 1; }, 30s)) << daemon.output();
  t.pg.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'preforkd'");
  ASSERT_TRUE(wait_until([&] { return t.count("state IN ('queued', 'running')") == 0; }, 60s))
      << daemon.output();
  EXPECT_EQ(t.count("state = 'done'"), 4) << daemon.output();
  auto ends = t.f.ends_per_job();
  for (const auto& id : ids) {
    EXPECT_EQ(ends[id], 1) << "job " << id;
    EXPECT_EQ(t.f.job(id)["attempts"], 1) << "job " << id;
  }
  EXPECT_TRUE(daemon.wait_output("1 job(s) finished before the failure reported again (one whose lease ran out meanwhile may have run again elsewhere), 2 leased and not started given back"))
      << daemon.output();
}

TEST(Postgres, PrefetchedJobsAreEachDoneExactlyOnce) {
  PgJobs t;
  t.configure(jobs_pool("work", persistent_handler(), {"bulk"}, 2), ", prefetch: 10");
  Daemon daemon(t.f.config, t.f.env);
  std::vector<std::string> payloads;
  for (int i = 0; i < 1000; ++i) payloads.push_back("{\"n\": " + std::to_string(i) + "}");
  auto ids = t.f.enqueue_batch("bulk", payloads);
  ASSERT_TRUE(t.f.wait_done("bulk", 1000, 120s)) << daemon.output();
  auto ends = t.f.ends_per_job();
  for (const auto& id : ids) EXPECT_EQ(ends[id], 1) << "job " << id;
  EXPECT_EQ(t.f.runs().size(), 1000u);
  EXPECT_EQ(t.count("state <> 'done'"), 0);
  EXPECT_EQ(t.count("attempts <> 1"), 0);
}

TEST(Postgres, APrefetchedBatchKeepsQueueAndPriorityOrder) {
  PgJobs t;
  // One claim takes all five: the batch is filled from q1 first, then q2, each in
  // priority / run_at / id order, whatever order RETURNING gives the rows in.
  t.configure(jobs_pool("work", exec_handler(), {"q1", "q2"}, 1), ", prefetch: 10");
  expect_strict_queue_order(t);
}

TEST(Postgres, ALongJobKeepsTheLeasesOfThePrefetchedJobsBehindIt) {
  PgJobs t;
  // One claim takes all three; the first runs 2.5 leases. Unless the heartbeat covers
  // the two waiting behind it, the idle second worker takes them over after 2 s and
  // they run twice.
  t.configure(jobs_pool("work", exec_handler(), {"long"}, 2), ", lease: 2s, prefetch: 3");
  Daemon daemon(t.f.config, t.f.env);
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  auto ids = t.f.enqueue_batch("long", {R"({"sleep_ms": 5000})", "{}", "{}"});
  for (const auto& id : ids) ASSERT_TRUE(t.f.wait_state(id, "done", 30s)) << daemon.output();
  auto runs = t.f.runs();
  EXPECT_EQ(runs.size(), 3u) << "a prefetched job ran twice";
  for (const auto& id : ids) EXPECT_EQ(t.f.job(id)["attempts"], 1) << "job " << id;
}

TEST(Postgres, QuitGivesBackThePrefetchedJobsNotYetStarted) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q"}, 1), ", prefetch: 5");
  std::vector<std::string> ids;
  {
    Daemon daemon(t.f.config, t.f.env);
    ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
    ids = t.f.enqueue_batch("q", {R"({"sleep_ms": 1500})", "{}", "{}", "{}", "{}"});
    ASSERT_TRUE(wait_until([&] { return t.f.runs().size() == 1; })) << daemon.output();
    EXPECT_EQ(t.f.stats("q")["running"], 5);  // the whole batch is leased to the worker
    daemon.signal(SIGQUIT);
    EXPECT_EQ(exit_code(daemon.wait_exit(20s)), 0) << daemon.output();
  }
  // The running job finished and is written done; the other four are queued again,
  // their attempt not counted.
  EXPECT_EQ(t.f.state(ids[0]), "done");
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(t.f.state(ids[i]), "queued") << "job " << ids[i];
    EXPECT_EQ(t.f.job(ids[i])["attempts"], 0) << "job " << ids[i];
  }
  EXPECT_EQ(t.f.runs().size(), 1u);

  Daemon again(t.f.config, t.f.env);
  ASSERT_TRUE(t.f.wait_done("q", 5)) << again.output();
  auto ends = t.f.ends_per_job();
  for (const auto& id : ids) EXPECT_EQ(ends[id], 1) << "job " << id;
  for (const auto& id : ids) EXPECT_EQ(t.f.job(id)["attempts"], 1) << "job " << id;
}

TEST(Postgres, ABadPrefetchIsAConfigErrorWithItsPosition) {
  PgJobs t;
  t.configure(jobs_pool("work", exec_handler(), {"q"}, 1), ", prefetch: 0");
  auto check = run({preforkd_bin(), "-c", t.f.config, "--check"});
  EXPECT_EQ(check.exit_code, 1);
  // Line 3 is the source's line (after `node:` and `sources:`).
  std::string line = "  pg: { type: postgres, url: \"" + t.pg.url() + "\", prefetch: 0 }";
  std::string at = t.f.config + ":3:" + std::to_string(line.find("prefetch: 0") + 11) + ": ";
  EXPECT_NE(check.err.find(at + "sources.pg.prefetch: must be a number from 1 to 1000 (got 0)"),
            std::string::npos) << check.err;
}

// Found by a probe: with the jobs table locked by another session (a migration, a LOCK
// TABLE by hand), the lease heartbeat waited on the lock inside the job's wait loop, so
// the job's timeout and TERM went unheard for as long as the lock lasted. The heartbeat
// now waits a third of the lease at most, and every statement a lock_timeout.
TEST(Postgres, AJobsTimeoutHoldsWhileItsTableIsLockedByAnotherSession) {
  PgJobs t;
  t.configure(jobs_pool("slow", exec_handler(), {"slow"}, 1,
                        "    timeout: 2s\n    timeout_grace: 500ms\n    graceful_timeout: 10s\n"
                        "    retry: { max_attempts: 1 }\n"),
              ", lease: 3s");
  Daemon daemon(t.f.config, t.f.env);
  std::string id = t.f.enqueue("slow", R"({"sleep_ms": 60000})");
  ASSERT_TRUE(wait_until([&] { return t.f.runs().size() == 1; })) << daemon.output();
  pid_t handler = t.f.runs()[0].pid;
  std::unique_ptr<PGconn, void (*)(PGconn*)> other(PQconnectdb(t.pg.url().c_str()), PQfinish);
  ASSERT_EQ(PQstatus(other.get()), CONNECTION_OK);
  PQclear(PQexec(other.get(), "BEGIN; LOCK TABLE preforkd_jobs IN ACCESS EXCLUSIVE MODE"));
  // Its timeout (2s) stops the handler while the table is still locked.
  bool stopped = wait_until([&] { return !pid_alive(handler); }, 20s);
  // preforkctl waited as long as the lock lasted; now it says why it cannot answer.
  auto stats = t.f.ctl({"stats"});
  PQclear(PQexec(other.get(), "COMMIT"));
  EXPECT_EQ(stats.exit_code, 1);
  EXPECT_NE(stats.err.find("lock timeout"), std::string::npos) << stats.err;
  ASSERT_TRUE(stopped) << daemon.output();
  ASSERT_TRUE(t.f.wait_state(id, "dead", 30s)) << daemon.output();
  EXPECT_NE(t.f.job(id)["last_error"].get<std::string>().find("timeout after 2000ms"), std::string::npos)
      << t.f.job(id);
}
