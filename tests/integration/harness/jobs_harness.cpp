// Implementation of the jobs test helpers (see jobs_harness.hpp).
#include "harness/jobs_harness.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <sstream>

namespace harness {

RunResult JobsFixture::ctl(const std::vector<std::string>& args, const std::string& input) const {
  std::vector<std::string> argv{preforkctl_bin(), "-c", config};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, input, env);
}

std::string JobsFixture::enqueue(const std::string& queue, const std::string& payload,
                                 const std::vector<std::string>& extra) const {
  std::vector<std::string> args{"enqueue", queue, "--payload", payload};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult result = ctl(args);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::string id = result.out.substr(0, result.out.find('\n'));
  EXPECT_FALSE(id.empty()) << result.err;
  return id;
}

std::vector<std::string> JobsFixture::enqueue_batch(const std::string& queue,
                                                    const std::vector<std::string>& payloads) const {
  std::string input;
  for (const auto& payload : payloads) input += payload + "\n";
  RunResult result = ctl({"enqueue", queue, "--batch"}, input);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::vector<std::string> ids;
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);) ids.push_back(line);
  EXPECT_EQ(ids.size(), payloads.size());
  return ids;
}

nlohmann::json JobsFixture::job(const std::string& id, const std::string& source) const {
  std::vector<std::string> args{"job", id, "--json"};
  if (!source.empty()) args.insert(args.end(), {"--source", source});
  RunResult result = ctl(args);
  if (result.exit_code != 0) return nlohmann::json::object({{"error", result.err}});
  return nlohmann::json::parse(result.out, nullptr, false);
}

bool JobsFixture::wait_state(const std::string& id, const std::string& wanted, Millis timeout) const {
  return wait_until([&] { return state(id) == wanted; }, timeout);
}

std::map<std::string, int64_t> JobsFixture::stats(const std::string& queue) const {
  RunResult result = ctl({"stats", "--json"});
  auto all = nlohmann::json::parse(result.out, nullptr, false);
  std::map<std::string, int64_t> out{{"queued", 0}, {"running", 0}, {"retry", 0}, {"done", 0}, {"dead", 0}};
  if (all.is_object() && all.contains(queue))
    for (auto& [state, count] : all[queue].items()) out[state] = count.get<int64_t>();
  return out;
}

bool JobsFixture::wait_done(const std::string& queue, int64_t count, Millis timeout) const {
  return wait_until([&] { return stats(queue)["done"] >= count; }, timeout);
}

std::vector<JobRun> JobsFixture::runs() const {
  std::vector<JobRun> out;
  std::istringstream lines(read_file(job_log));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string kind;
    JobRun run;
    fields >> kind >> run.id >> run.attempt >> run.pid >> run.queue;
    if (kind == "run") out.push_back(run);
    if (kind == "end")
      for (auto it = out.rbegin(); it != out.rend(); ++it)
        if (it->id == run.id && it->pid == run.pid && !it->ended) {
          it->ended = true;
          break;
        }
  }
  return out;
}

std::map<std::string, int> JobsFixture::ends_per_job() const {
  std::map<std::string, int> out;
  for (const auto& run : runs()) out[run.id] += run.ended;
  return out;
}

std::string jobs_pool(const std::string& name, const std::string& handler,
                      const std::vector<std::string>& queues, int workers, const std::string& extra) {
  return "  " + name + ":\n    handler: " + handler + "\n    queues: " + yaml_list(queues) +
         "\n    workers: " + std::to_string(workers) + "\n" + extra;
}

std::string exec_handler() { return "{ exec: " + yaml_list({test_handler_bin(), "exec"}) + " }"; }
std::string persistent_handler() {
  return "{ persistent: " + yaml_list({test_handler_bin(), "persistent"}) + " }";
}

void expect_retry_refused_while_its_unique_key_is_held(const JobsFixture& f, const std::string& queue) {
  std::string dead = f.enqueue(queue, R"({"exit": 1})", {"--unique", "report-7", "--max-attempts", "1"});
  {
    Daemon daemon(f.config, f.env);
    ASSERT_TRUE(f.wait_state(dead, "dead")) << daemon.output();
  }
  std::string holder = f.enqueue(queue, "{}", {"--unique", "report-7"});
  auto result = f.ctl({"retry", dead});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("job " + dead + " cannot be retried now: its unique key 'report-7' is held by job " +
                            holder + " (queued)"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(f.state(dead), "dead");
  EXPECT_EQ(f.state(holder), "queued");
}

void expect_deleted_jobs_never_run_and_running_ones_are_left_alone(const JobsFixture& f,
                                                                   const std::string& queue) {
  const std::string typo = queue + "_typo";
  std::vector<std::string> typo_ids = f.enqueue_batch(typo, {"{}", "{}"});
  typo_ids.push_back(f.enqueue(typo, "{}", {"--delay", "1h"}));
  typo_ids.push_back(f.enqueue(typo, "{}", {"--unique", "typo-key"}));
  std::string kept = f.enqueue(queue, "{}");
  std::string doomed = f.enqueue(queue, "{}", {"--unique", "k"});

  auto by_id = f.ctl({"delete", "999999", doomed});
  EXPECT_EQ(by_id.exit_code, 1);  // the unknown id, said; the other deleted all the same
  EXPECT_EQ(by_id.out, "job " + doomed + " deleted\n");
  EXPECT_NE(by_id.err.find("no job with id 999999"), std::string::npos) << by_id.err;
  EXPECT_EQ(f.ctl({"job", doomed}).exit_code, 1);
  std::string again = f.enqueue(queue, "{}", {"--unique", "k"});
  EXPECT_NE(again, doomed);

  auto by_queue = f.ctl({"delete", "--queue", typo});
  EXPECT_EQ(by_queue.exit_code, 0) << by_queue.err;
  EXPECT_EQ(by_queue.out, "deleted 4 job(s) of queue " + typo + "\n");
  for (const auto& id : typo_ids) EXPECT_EQ(f.ctl({"job", id}).exit_code, 1) << "job " << id;
  EXPECT_EQ(f.stats(typo)["queued"], 0);
  std::string key_holder = f.enqueue(typo, "{}", {"--unique", "typo-key"});
  EXPECT_NE(key_holder, typo_ids[3]);
  EXPECT_EQ(f.ctl({"delete", key_holder}).exit_code, 0);

  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(f.wait_state(kept, "done")) << daemon.output();
  ASSERT_TRUE(f.wait_state(again, "done")) << daemon.output();
  std::string dead = f.enqueue(queue, R"({"exit": 1})", {"--max-attempts", "1"});
  ASSERT_TRUE(f.wait_state(dead, "dead")) << daemon.output();
  std::string busy = f.enqueue(queue, R"({"sleep_ms": 60000})");
  ASSERT_TRUE(f.wait_state(busy, "running")) << daemon.output();

  auto refused = f.ctl({"delete", busy});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("job " + busy + " is running (held by "), std::string::npos) << refused.err;
  auto dead_only = f.ctl({"delete", "--queue", queue, "--state", "dead"});
  EXPECT_EQ(dead_only.exit_code, 0) << dead_only.err;
  EXPECT_EQ(dead_only.out, "deleted 1 dead job(s) of queue " + queue + "\n");
  EXPECT_EQ(dead_only.err, "");  // the running job is not in question
  auto whole_queue = f.ctl({"delete", "--queue", queue});
  EXPECT_EQ(whole_queue.exit_code, 0) << whole_queue.err;
  EXPECT_EQ(whole_queue.out, "deleted 2 job(s) of queue " + queue + "\n");  // the two done
  EXPECT_NE(whole_queue.err.find("1 running job(s) of queue " + queue + " left alone"), std::string::npos)
      << whole_queue.err;
  EXPECT_EQ(f.ctl({"job", dead}).exit_code, 1);
  EXPECT_EQ(f.stats(queue)["dead"], 0);
  EXPECT_EQ(f.stats(queue)["done"], 0);
  EXPECT_EQ(f.ctl({"job", kept}).exit_code, 1);
  EXPECT_EQ(f.state(busy), "running");

  std::set<std::string> deleted(typo_ids.begin(), typo_ids.end());
  deleted.insert(doomed);
  for (const auto& run : f.runs()) EXPECT_FALSE(deleted.count(run.id)) << "deleted job " << run.id << " ran";
}

void expect_a_killed_batch_charges_only_the_job_that_kills_a_worker_alone(const JobsFixture& f,
                                                                          const std::string& queue) {
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  auto ids = f.enqueue_batch(queue, {R"({"sleep_ms": 60000})", "{}", "{}", "{}", "{}"});
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
  EXPECT_EQ(f.stats(queue)["running"], 5);  // one claim leased the whole batch
  pid_t first = daemon.children().front();
  ::kill(first, SIGKILL);

  // Nobody knows which of the five was running: none is charged, and each now runs
  // alone. The long one comes first, at attempt 1 again; the rest wait, uncounted.
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 2; }, 30s)) << daemon.output();
  auto second = f.runs()[1];
  EXPECT_EQ(second.id, ids[0]);
  EXPECT_EQ(second.attempt, 1);
  EXPECT_EQ(f.stats(queue)["running"], 1);
  EXPECT_NE(f.job(ids[0])["last_error"].get<std::string>().find(
                "with 4 other job(s); attempt not counted, it runs alone next"),
            std::string::npos)
      << f.job(ids[0]).dump();
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(f.state(ids[i]), "queued") << "job " << ids[i];
    EXPECT_EQ(f.job(ids[i])["attempts"], 0) << "job " << ids[i];
  }

  // Alone, its worker's death is its own: charged, and with max_attempts 1 it is dead
  // without a third run. Every other job runs once.
  std::vector<pid_t> now = daemon.children();
  ASSERT_EQ(now.size(), 1u);
  ASSERT_NE(now.front(), first);
  ::kill(now.front(), SIGKILL);
  ASSERT_TRUE(f.wait_state(ids[0], "dead", 30s)) << daemon.output();
  EXPECT_NE(f.job(ids[0])["last_error"].get<std::string>().find("attempts exhausted (1 of 1)"),
            std::string::npos)
      << f.job(ids[0]).dump();
  EXPECT_TRUE(daemon.wait_output("dead without a run: attempts exhausted (1 of 1)")) << daemon.output();
  // Found by a probe: the line named the attempt it was claimed for ("attempt=2" of a job
  // with 1 allowed), read as a count gone wrong.
  EXPECT_TRUE(daemon.wait_output("queue=" + f.job(ids[0])["queue"].get<std::string>() +
                                 ": dead without a run")) << daemon.output();
  EXPECT_EQ(f.job(ids[0])["attempts"], 1) << f.job(ids[0]).dump();
  for (size_t i = 1; i < ids.size(); ++i) {
    ASSERT_TRUE(f.wait_state(ids[i], "done", 30s)) << "job " << ids[i] << "\n" << daemon.output();
    EXPECT_EQ(f.job(ids[i])["attempts"], 1) << "job " << ids[i];
  }
  auto ends = f.ends_per_job();
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(ends[ids[i]], 1) << "job " << ids[i];
  EXPECT_EQ(f.runs().size(), 6u);
}

void expect_a_job_whose_worker_died_is_claimed_alone_from_then_on(const JobsFixture& f,
                                                                   const std::string& queue) {
  Daemon daemon(f.config, f.env);
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  std::string poison = f.enqueue(queue, R"({"sleep_ms": 60000})");
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 1; })) << daemon.output();
  // Behind it, while it runs alone: the next claim could lease them with it.
  auto others = f.enqueue_batch(queue, {"{}", "{}", "{}", "{}"});
  pid_t first = daemon.children().front();
  ::kill(first, SIGKILL);

  // Its worker held only it: charged. The next worker finds it back at the head of the
  // queue, and still takes it alone, not with the four behind it.
  ASSERT_TRUE(wait_until([&] { return f.runs().size() == 2; }, 30s)) << daemon.output();
  EXPECT_EQ(f.runs()[1].id, poison);
  EXPECT_EQ(f.runs()[1].attempt, 2);
  EXPECT_EQ(f.stats(queue)["running"], 1);
  for (const auto& id : others) EXPECT_EQ(f.state(id), "queued") << "job " << id;
  // The worker that took it back said so (it was not logged before).
  EXPECT_TRUE(daemon.wait_output("job " + poison + ": lease expired (held by ")) << daemon.output();
  EXPECT_TRUE(daemon.wait_output("; queued again")) << daemon.output();

  // Alone again, charged again: with two attempts it is dead without a third run, and
  // the other four each run once.
  std::vector<pid_t> now = daemon.children();
  ASSERT_EQ(now.size(), 1u);
  ASSERT_NE(now.front(), first);
  ::kill(now.front(), SIGKILL);
  ASSERT_TRUE(f.wait_state(poison, "dead", 30s)) << daemon.output();
  // Its record shows the two runs it had, not the claim that found none left (it
  // said 3 of 2).
  EXPECT_EQ(f.job(poison)["attempts"], 2) << f.job(poison).dump();
  for (const auto& id : others) {
    ASSERT_TRUE(f.wait_state(id, "done", 30s)) << "job " << id << "\n" << daemon.output();
    EXPECT_EQ(f.job(id)["attempts"], 1) << "job " << id;
  }
  EXPECT_EQ(f.runs().size(), 6u);
}

}  // namespace harness
