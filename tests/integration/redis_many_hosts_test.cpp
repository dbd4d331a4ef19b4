// Three supervisors with different node names share one Redis: every job is done, and
// under chaos (children and a whole supervisor killed, Redis restarted) none is lost.
#include <gtest/gtest.h>
#include <signal.h>

#include <iostream>
#include <random>

#include "harness/jobs_harness.hpp"
#include "harness/redis_server.hpp"

using namespace harness;

namespace {

struct Cluster {
  explicit Cluster(const RedisServer& redis, const std::string& lease = "2s") {
    for (int i = 0; i < 3; ++i) {
      configs.push_back(f.dir.file("node" + std::to_string(i) + ".yaml"));
      write_file(configs.back(),
                 "node: node" + std::to_string(i) + "\nsources:\n  shared: { type: redis, url: \"" +
                     redis.url() + "\", lease: " + lease + " }\npools:\n" +
                     jobs_pool("w", persistent_handler(), {"bulk"}, 2,
                               "    err_respawn_interval: 10ms\n    err_respawn_max: 100ms\n"
                               "    retry: { max_attempts: 100, backoff: fixed, base: 10ms }\n"));
    }
    f.config = configs[0];  // preforkctl uses the first node's config
  }
  void start(int i) { daemons[i] = std::make_unique<Daemon>(configs[i], f.env); }
  JobsFixture f;
  std::vector<std::string> configs;
  std::unique_ptr<Daemon> daemons[3];
};

// Runs per job from the handlers' log: every job must have finished at least once.
void report(const std::string& name, const JobsFixture& f, const std::vector<std::string>& ids) {
  auto ends = f.ends_per_job();
  size_t missing = 0, duplicates = 0;
  for (const auto& id : ids) {
    if (ends[id] == 0) ++missing;
    if (ends[id] > 1) duplicates += ends[id] - 1;
  }
  std::cout << name << ": " << ids.size() << " jobs, " << f.runs().size() << " runs, "
            << duplicates << " duplicate completions, " << missing << " never completed\n";
  EXPECT_EQ(missing, 0u);
}

}  // namespace

TEST(RedisManyHosts, ThreeSupervisorsDrainThirtyThousandJobsEachOnce) {
  RedisServer redis;
  Cluster cluster(redis);
  std::vector<std::string> payloads(30000, "{}");
  auto ids = cluster.f.enqueue_batch("bulk", payloads);
  for (int i = 0; i < 3; ++i) cluster.start(i);
  ASSERT_TRUE(cluster.f.wait_done("bulk", 30000, 300s)) << cluster.daemons[0]->output();
  report("three supervisors", cluster.f, ids);
  // Nobody was killed: no job ran twice.
  for (const auto& [id, count] : cluster.f.ends_per_job()) EXPECT_EQ(count, 1) << "job " << id;
  std::set<std::string> nodes;
  for (int i = 0; i < 3; ++i)
    if (cluster.daemons[i]->output().find("spawned pool=w") != std::string::npos) nodes.insert("node" + std::to_string(i));
  EXPECT_EQ(nodes.size(), 3u);
}

TEST(RedisManyHosts, ChaosLosesNoJob) {
  RedisServer redis;
  Cluster cluster(redis);
  auto ids = cluster.f.enqueue_batch("bulk", std::vector<std::string>(10000, R"({"sleep_ms": 1})"));
  for (int i = 0; i < 3; ++i) cluster.start(i);
  std::mt19937 rng(7);
  int child_kills = 0;
  bool supervisor_killed = false, redis_restarted = false;
  ASSERT_TRUE(wait_until(
      [&] {
        auto done = cluster.f.stats("bulk")["done"];
        if (!supervisor_killed && done >= 2000) {
          cluster.daemons[2]->signal(SIGKILL);  // its children die with it (PDEATHSIG)
          supervisor_killed = true;
        }
        if (!redis_restarted && done >= 4000) {
          redis.restart();
          redis_restarted = true;
        }
        auto children = cluster.daemons[child_kills % 2]->children();
        if (!children.empty()) {
          ::kill(children[rng() % children.size()], SIGKILL);
          ++child_kills;
        }
        std::this_thread::sleep_for(100ms);  // the chaos rhythm: one kill per 100 ms
        return done == 10000;
      },
      600s))
      << cluster.f.stats("bulk")["done"] << " done\n" << cluster.daemons[0]->output();
  std::cout << "chaos: " << child_kills << " children killed, 1 supervisor killed, Redis restarted "
            << (redis_restarted ? "once" : "never") << "\n";
  report("chaos", cluster.f, ids);
  EXPECT_TRUE(supervisor_killed);
  EXPECT_TRUE(redis_restarted);
  auto stats = cluster.f.stats("bulk");
  EXPECT_EQ(stats["queued"] + stats["running"] + stats["retry"] + stats["dead"], 0);
}
