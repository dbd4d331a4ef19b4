// The Redis source: Resque's layout and job format, with reliable fetch (jobs move
// atomically into a per-worker processing list), acks sent with the next claim in one
// round trip, recovery of dead workers' lists, delayed/retry jobs in a sorted set, and
// idle workers woken by keyspace notifications on their queues instead of polling.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include "preforkd/job_source.hpp"
#include "sources/redis/redis_connection.hpp"

namespace preforkd::redis {

struct RedisSettings {
  RedisUrl url;
  std::string ns = "resque";
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds keep_done{24 * 3600 * 1000};
  std::chrono::milliseconds timeout{5000};  // connect and per-command
  int prefetch = 1;
  std::string node;
};

class RedisSource final : public JobSource {
 public:
  // `worker_id` ("node:pid") gets a per-connection suffix: after a reconnect the old
  // connection's processing list is recovered like a dead worker's once its
  // heartbeat expires, while this connection starts a list of its own.
  RedisSource(RedisSettings settings, const std::string& worker_id);
  ~RedisSource() override;

  std::optional<Job> fetch(std::span<const std::string> queues, std::chrono::milliseconds wait) override;
  void complete(const Job& job) override;
  void fail(const Job& job, std::string_view reason, RetryDecision retry) override;
  void release(const Job& job) override;
  void extend_lease(const Job& job) override;
  std::chrono::milliseconds lease_time() const override { return settings_.lease; }
  EnqueueResult enqueue(const NewJob& job) override;
  std::vector<EnqueueResult> enqueue_batch(std::span<const NewJob> jobs) override;
  std::vector<QueueStats> stats() override;
  JobInfo get(const std::string& id) override;
  std::vector<JobInfo> list(const JobFilter& filter) override;
  void retry_now(const std::string& id) override;
  void remove(const std::string& id) override;
  int64_t remove_queue(const std::string& queue, std::span<const JobState> states) override;
  Unsettled take_unsettled() override;

 private:
  Reply eval(const char* script, std::vector<std::string> args, bool allow_error = false);
  bool claim(std::span<const std::string> queues, int max_jobs, int64_t* next_due);
  void flush_acks();
  // A claimed job whose body cannot carry its id (not an object): dead, not run.
  void bury_untrackable(const Job& job, std::string_view stored);
  // A queue whose key is not a list (the claim skips it): logged once.
  void warn_wrong_type(const std::string& queue);
  void release_prefetched();  // gives back every job prefetched and not started
  void maybe_recover();
  void subscribe(std::span<const std::string> queues);
  void finish(const Job& job, const char* mode, const std::string& error, int64_t run_at,
              const std::string& failure = "");
  std::string key(const std::string& suffix) const { return settings_.ns + ":preforkd:" + suffix; }

  RedisSettings settings_;
  std::string worker_id_;
  Connection connection_;
  std::unique_ptr<Connection> subscriber_;
  bool notifications_ = false;
  std::unordered_map<const char*, std::string> shas_;
  std::deque<Job> prefetched_;
  std::vector<std::string> pending_acks_;  // ids of jobs done, sent with the next claim
  std::chrono::steady_clock::time_point next_recover_{};
  std::set<std::string> wrong_type_queues_;
};

}  // namespace preforkd::redis
