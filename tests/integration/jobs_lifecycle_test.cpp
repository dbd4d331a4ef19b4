// Jobs across the supervisor's life: many jobs none lost, workers killed mid-job,
// QUIT/HUP letting the running job finish, TERM giving it back, recycling children.
#include <gtest/gtest.h>

#include <filesystem>
#include <signal.h>

#include <random>
#include <thread>

#include "harness/jobs_harness.hpp"

using namespace harness;

TEST(Jobs, TwoThousandJobsAcrossFourWorkersAreEachDoneExactlyOnce) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"bulk"}, 4));
  Daemon daemon(f.config, f.env);
  std::vector<std::string> payloads;
  for (int i = 0; i < 2000; ++i) payloads.push_back("{\"n\": " + std::to_string(i) + "}");
  auto ids = f.enqueue_batch("bulk", payloads);
  ASSERT_TRUE(f.wait_done("bulk", 2000, 120s)) << daemon.output();
  auto ends = f.ends_per_job();
  EXPECT_EQ(ends.size(), 2000u);
  for (const auto& id : ids) EXPECT_EQ(ends[id], 1) << "job " << id;
  EXPECT_EQ(f.runs().size(), 2000u);
  auto stats = f.stats("bulk");
  EXPECT_EQ(stats["queued"] + stats["running"] + stats["retry"] + stats["dead"], 0);
  // Every worker took part.
  std::set<pid_t> handlers;
  for (const auto& run : f.runs()) handlers.insert(run.pid);
  EXPECT_EQ(handlers.size(), 4u);
}

TEST(Jobs, KillingWorkersMidJobLosesNothing) {
  JobsFixture f;
  write_file(f.config,
             "sources:\n  local: { type: sqlite, path: var/jobs.db, lease: 1s }\n"
             "pools:\n" +
                 jobs_pool("work", exec_handler(), {"chaos"}, 4,
                           "    err_respawn_interval: 10ms\n    err_respawn_max: 50ms\n"
                           "    retry: { max_attempts: 100, backoff: fixed, base: 10ms }\n"));
  Daemon daemon(f.config, f.env);
  auto ids = f.enqueue_batch("chaos", std::vector<std::string>(500, R"({"sleep_ms": 5})"));
  std::mt19937 rng(42);
  int kills = 0;
  // Kill a random worker every few jobs until everything is done.
  ASSERT_TRUE(wait_until(
      [&] {
        auto children = daemon.children();
        if (!children.empty() && kills < 40) {
          ::kill(children[rng() % children.size()], SIGKILL);
          ++kills;
        }
        return f.stats("chaos")["done"] == 500;
      },
      180s))
      << f.stats("chaos")["done"] << " done\n" << daemon.output();
  EXPECT_GT(kills, 5);
  auto ends = f.ends_per_job();
  for (const auto& id : ids) EXPECT_GE(ends[id], 1) << "job " << id << " never finished";
  auto stats = f.stats("chaos");
  EXPECT_EQ(stats["queued"] + stats["running"] + stats["retry"] + stats["dead"], 0);
}

TEST(Jobs, QuitLetsTheRunningJobFinish) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"long"}, 1));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("long", R"({"sleep_ms": 1500})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
  daemon.signal(SIGQUIT);
  EXPECT_EQ(exit_code(daemon.wait_exit(20s)), 0) << daemon.output();
  EXPECT_EQ(f.state(id), "done");
  EXPECT_TRUE(f.runs()[0].ended);
}

TEST(Jobs, HupLetsTheRunningJobFinishAndTheNewGenerationTakesTheNext) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"long"}, 1));
  Daemon daemon(f.config, f.env);
  std::string first = f.enqueue("long", R"({"sleep_ms": 1500})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
  daemon.signal(SIGHUP);
  std::string second = f.enqueue("long", "{}");
  ASSERT_TRUE(f.wait_state(second, "done")) << daemon.output();
  ASSERT_TRUE(f.wait_state(first, "done")) << daemon.output();
  auto runs = f.runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(runs[0].ended);
  EXPECT_EQ(f.job(first)["attempts"], 1);  // not cut off and run again
}

// Found by a probe: a worker bears the supervisor's name, so `killall -USR1 preforkd`
// (logrotate's idiom) or `kill -HUP` of every preforkd reached the workers, whose
// default action ended them mid-job, the job leased until its lease ran out. Sent to a
// worker, USR1 and USR2 now do nothing and HUP lets the job finish, as QUIT does.
TEST(Jobs, HupUsr1AndUsr2SentToAWorkerDirectlyCutNoJobOff) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"long"}, 1));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("long", R"({"sleep_ms": 1500})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
  auto workers = daemon.children();
  ASSERT_EQ(workers.size(), 1u);
  pid_t worker = workers.front();
  for (int signo : {SIGUSR1, SIGUSR2, SIGHUP}) ASSERT_EQ(::kill(worker, signo), 0);
  ASSERT_TRUE(f.wait_state(id, "done")) << daemon.output();
  EXPECT_EQ(f.job(id)["attempts"], 1);
  EXPECT_TRUE(f.runs()[0].ended);
  // HUP asked it to finish: it exits cleanly after the job and is replaced.
  EXPECT_TRUE(daemon.wait_output("exited pool=work pid=" + std::to_string(worker) + " generation=1: exit status 0"))
      << daemon.output();
  EXPECT_EQ(daemon.count_output("killed by signal"), 0u) << daemon.output();
  ASSERT_TRUE(wait_until([&] {
    auto now = daemon.children();
    return now.size() == 1 && now.front() != worker;
  })) << daemon.output();
  // ALRM, which preforkd has no use for, is logged and ignored by the supervisor.
  daemon.signal(SIGALRM);
  EXPECT_TRUE(daemon.wait_output("ALRM received: ignored")) << daemon.output();
  EXPECT_TRUE(daemon.running());
}

// Found by a probe: with the config under a Capistrano `current` and the default source,
// a deploy and HUP moved the workers to an empty database of the new release; the jobs
// queued in the old one were never run, and nothing said so.
TEST(Jobs, AReloadWhoseDatabaseMovesWithTheReleaseSaysSo) {
  JobsFixture f;
  namespace fs = std::filesystem;
  for (const char* release : {"releases/1", "releases/2"}) {
    fs::create_directories(f.dir.file(release));
    write_file(f.dir.file(std::string(release) + "/preforkd.yaml"),
               "pools:\n" + jobs_pool("work", exec_handler(), {"q"}, 1));
  }
  fs::create_directory_symlink(f.dir.file("releases/1"), f.dir.file("current"));
  Daemon daemon(f.dir.file("current/preforkd.yaml"), f.env);
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  fs::create_directory_symlink(f.dir.file("releases/2"), f.dir.file("current.new"));
  fs::rename(f.dir.file("current.new"), f.dir.file("current"));
  daemon.signal(SIGHUP);
  EXPECT_TRUE(daemon.wait_output("reload: source 'default' now uses the database " +
                                 f.dir.file("releases/2/var/jobs.db") + ", not " +
                                 f.dir.file("releases/1/var/jobs.db")))
      << daemon.output();
  // A reload that leaves it where it was says nothing.
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.wait_output("generation 3 ready")) << daemon.output();
  EXPECT_EQ(daemon.count_output("now uses the database"), 1u) << daemon.output();
}

TEST(Jobs, TermGivesTheRunningJobBackAndItRunsLater) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"long"}, 1,
                                              "    timeout_grace: 500ms\n"));
  {
    Daemon daemon(f.config, f.env);
    std::string id = f.enqueue("long", R"({"sleep_ms": 20000})");
    ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
    daemon.signal(SIGTERM);
    EXPECT_EQ(exit_code(daemon.wait_exit(20s)), 0) << daemon.output();
    auto job = f.job(id);
    EXPECT_EQ(job["state"], "queued") << job;
    EXPECT_EQ(job["attempts"], 0) << "a given-back job is not a failed attempt";
  }
  // The next start runs it.
  write_file(f.config, "pools:\n" + jobs_pool("work", exec_handler(), {"long"}, 1));
  Daemon again(f.config, f.env);
  auto id = f.runs()[0].id;
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 2; })) << again.output();
  EXPECT_EQ(f.runs()[1].id, id);
}

TEST(Jobs, MaxRequestsPerChildRecyclesChildrenWithoutLosingJobs) {
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", persistent_handler(), {"recycle"}, 2,
                                              "    max_requests_per_child: 10\n"
                                              "    max_requests_jitter: 3\n"));
  Daemon daemon(f.config, f.env);
  auto ids = f.enqueue_batch("recycle", std::vector<std::string>(100, "{}"));
  ASSERT_TRUE(f.wait_done("recycle", 100)) << daemon.output();
  auto ends = f.ends_per_job();
  for (const auto& id : ids) EXPECT_EQ(ends[id], 1) << "job " << id;
  // 100 jobs at 10-13 per child: at least 8 children served.
  EXPECT_GE(daemon.count_output("max_requests_per_child reached"), 7u) << daemon.output();
  std::set<pid_t> handlers;
  for (const auto& run : f.runs()) handlers.insert(run.pid);
  EXPECT_GE(handlers.size(), 8u);
}

TEST(Jobs, ALongJobKeepsItsLeaseAliveAndRunsOnce) {
  JobsFixture f;
  write_file(f.config,
             "sources:\n  local: { type: sqlite, lease: 2s }\n"
             "pools:\n" + jobs_pool("work", exec_handler(), {"long"}, 2));
  Daemon daemon(f.config, f.env);
  // Runs 2.5 leases: without heartbeats the idle worker would take it over.
  std::string id = f.enqueue("long", R"({"sleep_ms": 5000})");
  ASSERT_TRUE(f.wait_state(id, "done", 20s)) << daemon.output();
  EXPECT_EQ(f.runs().size(), 1u) << "the job ran twice while its first run was going";
  EXPECT_EQ(f.job(id)["attempts"], 1);
}

TEST(Jobs, APayloadLargerThanThePipeDoesNotHoldUpTheTimeout) {
  // The handler never reads its stdin: with a 200 KB payload the pipe fills up, and the
  // worker must still see the job's timeout (it blocked in write() until the handler
  // exited, 30 s later).
  JobsFixture f;
  write_file(f.config, "pools:\n" + jobs_pool("work", "{ exec: [/bin/sh, -c, 'exec sleep 30'] }", {"q"}, 1,
                                              "    timeout: 300ms\n    timeout_grace: 200ms\n"
                                              "    retry: { max_attempts: 1 }\n"));
  Daemon daemon(f.config, f.env);
  auto enqueued = f.ctl({"enqueue", "q", "--payload", "-"}, "\"" + std::string(200000, 'x') + "\"");
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.err;
  std::string id = enqueued.out.substr(0, enqueued.out.find('\n'));
  ASSERT_TRUE(f.wait_state(id, "dead", 15s)) << daemon.output();
  EXPECT_NE(f.job(id)["last_error"].get<std::string>().find("timeout"), std::string::npos) << f.job(id).dump();
}

TEST(Jobs, APersistentHandlerWritingAHugeLineFailsTheJobInsteadOfFillingMemory) {
  // 20 MiB without a newline, then silence: the worker buffered it all and waited on.
  JobsFixture f;
  write_file(f.config,
             "pools:\n" + jobs_pool("work",
                                    "{ persistent: [/bin/sh, -c, 'read request; head -c 20000000 /dev/zero "
                                    "| tr \"\\\\0\" x; exec sleep 30'] }",
                                    {"q"}, 1, "    timeout_grace: 200ms\n    retry: { max_attempts: 1 }\n"));
  Daemon daemon(f.config, f.env);
  std::string id = f.enqueue("q", "{}");
  ASSERT_TRUE(f.wait_state(id, "dead", 20s)) << daemon.output();
  EXPECT_NE(f.job(id)["last_error"].get<std::string>().find("longer than 16 MiB"), std::string::npos)
      << f.job(id).dump();
}

// Found by a probe: a QUIT that came while a worker's claim waited on a database lock
// did not stop it from running the job it then got; QUIT leaves jobs not started queued.
// The fixture's "quit_while_claiming" source sends the worker QUIT inside its claim.
TEST(Jobs, AJobClaimedAsQuitArrivesIsGivenBackNotRun) {
  JobsFixture f;
  write_file(f.config, "sources:\n  store: { type: quit_while_claiming }\npools:\n" +
                           jobs_pool("work", "in_process", {"inproc"}, 1, "    source: store\n"));
  Daemon daemon(f.config, f.env, {}, test_inprocess_bin());
  ASSERT_TRUE(wait_until([&] { return read_file(f.job_log).find("released 1") != std::string::npos; }))
      << read_file(f.job_log) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("given back to the queue (the worker was told to stop as it claimed the job)"))
      << daemon.output();
  EXPECT_TRUE(f.runs().empty()) << read_file(f.job_log);
  EXPECT_EQ(read_file(f.job_log).find("completed"), std::string::npos);
  daemon.signal(SIGTERM);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0) << daemon.output();
}

// A source that opens and then fails at its first statement (a database that cannot be
// written, a full disk): the worker's outage goes on until something works, with a
// growing backoff. It used to end at each successful open, with "reachable again", and
// start again at once: a reconnect and two log lines every 100 ms. The "unwritable"
// source type is the fixture program's own plugin (test_inprocess_preforkd.cpp).
TEST(Jobs, ASourceThatOpensButFailsAtOnceIsRetriedWithAGrowingBackoff) {
  JobsFixture f;
  write_file(f.config, "sources:\n  store: { type: unwritable }\npools:\n" +
                           jobs_pool("work", "in_process", {"inproc"}, 1, "    source: store\n"));
  Daemon daemon(f.config, f.env, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("source 'store' failed: unwritable: attempt to write a readonly store"))
      << daemon.output();
  // What must not happen, watched for 1.5 s (not a wait for something): at a try every
  // 100 ms, each logged as an outage ended and a new one, about 15 failure lines.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(daemon.count_output("source 'store' failed"), 1u) << daemon.output();
  EXPECT_EQ(daemon.count_output("reachable again"), 0u) << daemon.output();
  EXPECT_TRUE(daemon.running());
}
