// The Redis source's job lifecycle: claim / ack / finish / recover (see redis_source.hpp
// and redis_scripts.hpp for the key layout).
#include "sources/redis/redis_source.hpp"

#include <poll.h>
#include <signal.h>

#include <cerrno>
#include <climits>
#include <utility>

#include "sources/epoch_ms.hpp"
#include "sources/job_messages.hpp"
#include "sources/redis/redis_scripts.hpp"
#include "sources/redis/resque_format.hpp"
#include "sources/unsettled_jobs.hpp"
#include "util/log.hpp"

namespace preforkd::redis {
namespace {

using std::chrono::milliseconds;

int to_int(const redisReply* reply) {
  if (!reply) return 0;
  if (reply->type == REDIS_REPLY_INTEGER) return static_cast<int>(reply->integer);
  try {
    return std::stoi(reply_string(reply));
  } catch (const std::exception&) {
    return 0;
  }
}

// This host's worker processes ("node:pid:connection") that no longer exist: their
// leases need no waiting.
bool is_dead_local_worker(const std::string& worker, const std::string& node, pid_t self) {
  if (worker.rfind(node + ":", 0) != 0) return false;
  try {
    pid_t pid = std::stoi(worker.substr(node.size() + 1));  // stops at the next ':' 
    return pid != self && pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH;
  } catch (const std::exception&) {
    return false;
  }
}

// One of this process's own earlier connections (`node:pid:N`, not `current`). A worker
// holds one connection to its source at a time: every job of an earlier one was settled
// (finished, failed or given back, under that connection's name) when it reconnected, so
// what such a list still holds, it never knew it had.
bool is_own_lost_connection(const std::string& worker, const std::string& node, pid_t self,
                            const std::string& current) {
  std::string own = node + ":" + std::to_string(self) + ":";
  return worker != current && worker.rfind(own, 0) == 0;
}

int connections_opened = 0;

}  // namespace

RedisSource::RedisSource(RedisSettings settings, const std::string& worker_id)
    : settings_(std::move(settings)),
      worker_id_(worker_id + ":" + std::to_string(++connections_opened)),
      connection_(settings_.url, settings_.timeout) {
  for (const char* script : {claim_script, finish_script, enqueue_script, recover_script, retry_now_script})
    shas_[script] = reply_string(connection_.command({"SCRIPT", "LOAD", script}).get());
}

RedisSource::~RedisSource() {
  // A stopping worker: acknowledge what it finished, give back what it prefetched.
  try {
    flush_acks();
    release_prefetched();
  } catch (const std::exception& e) {
    spdlog::warn("redis: could not hand back on close ({}); the jobs return when the lease expires",
                 e.what());
  }
}

Reply RedisSource::eval(const char* script, std::vector<std::string> args, bool allow_error) {
  args.insert(args.begin(), {"EVALSHA", shas_[script], "0"});
  Reply reply = connection_.command(args, true);
  if (reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str, reply->len).rfind("NOSCRIPT", 0) == 0) {
    // The server restarted (or SCRIPT FLUSH): load it again.
    shas_[script] = reply_string(connection_.command({"SCRIPT", "LOAD", script}).get());
    args[1] = shas_[script];
    reply = connection_.command(args, true);
  }
  if (reply->type == REDIS_REPLY_ERROR && !allow_error)
    connection_.fail("script: " + std::string(reply->str, reply->len));
  return reply;
}

bool RedisSource::claim(std::span<const std::string> queues, int max_jobs, int64_t* next_due) {
  std::vector<std::string> args{settings_.ns,
                                worker_id_,
                                std::to_string(now_ms()),
                                std::to_string(settings_.lease.count()),
                                std::to_string(settings_.keep_done.count()),
                                std::to_string(max_jobs),
                                std::to_string(pending_acks_.size())};
  args.insert(args.end(), pending_acks_.begin(), pending_acks_.end());
  args.insert(args.end(), queues.begin(), queues.end());
  Reply reply = eval(claim_script, std::move(args));
  pending_acks_.clear();
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) connection_.fail("claim: unexpected reply");
  std::string due = reply_string(reply->element[reply->elements - 1]);
  if (next_due) *next_due = due.empty() ? INT64_MAX : std::stoll(due);
  for (size_t i = 0; i + 1 < reply->elements; ++i) {
    const redisReply* row = reply->element[i];
    if (row->type == REDIS_REPLY_ARRAY && row->elements == 2 && reply_string(row->element[0]) == "wrongtype") {
      warn_wrong_type(reply_string(row->element[1]));
      continue;
    }
    if (row->type != REDIS_REPLY_ARRAY || row->elements < 5) continue;
    std::string queue = reply_string(row->element[0]);
    std::string entry = reply_string(row->element[1]);
    size_t nl = entry.find('\n');
    Job job;
    job.id = entry.substr(0, nl);
    job.queue = queue;
    job.lease_holder = worker_id_;
    job.payload = handler_payload(std::string_view(entry).substr(nl + 1));
    job.attempt = to_int(row->element[2]);
    job.max_attempts = to_int(row->element[3]);
    job.priority = to_int(row->element[4]);
    // A body the claim script could not give its id (see with_id): retried, it would
    // never reach max_attempts.
    if (row->elements >= 6 && to_int(row->element[5]) == 0) {
      bury_untrackable(job, std::string_view(entry).substr(nl + 1));
      continue;
    }
    prefetched_.push_back(std::move(job));
  }
  return !prefetched_.empty();
}

void RedisSource::warn_wrong_type(const std::string& queue) {
  // Once per queue and worker: it is checked at every claim, and stays until fixed.
  if (!wrong_type_queues_.insert(queue).second) return;
  std::string queue_key = settings_.ns + ":queue:" + queue;
  spdlog::error("redis {}: queue '{}' is skipped: its key {} is not a list (see redis-cli TYPE {}); "
                "the pool's other queues are served. Rename or delete that key: jobs pushed to "
                "the queue meanwhile fail at the client, delayed ones wait",
                settings_.url.display(), queue, queue_key, queue_key);
}

void RedisSource::bury_untrackable(const Job& job, std::string_view stored) {
  // Dead at once, in Resque's failed list like any dead job: Resque's own worker fails
  // such a job too (a job is a {"class": ..., "args": [...]} object).
  std::string error = "the job is not a JSON object, so preforkd cannot count its attempts; "
                      "enqueue it as an object (a Resque job is {\"class\": ..., \"args\": [...]})";
  spdlog::warn("redis {}: job {} on queue {} is dead without a run: {}", settings_.url.display(),
               job.id, job.queue, error);
  finish(job, "dead", error, 0,
         resque_failure(stored, job.queue, worker_id_, error, std::chrono::system_clock::now()));
}

void RedisSource::flush_acks() {
  if (pending_acks_.empty()) return;
  claim({}, 0, nullptr);
}

void RedisSource::maybe_recover() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_recover_) return;
  next_recover_ = now + std::clamp(settings_.lease / 2, milliseconds(1000), milliseconds(30000));
  std::vector<std::string> args{settings_.ns, std::to_string(now_ms())};
  Reply workers = connection_.command({"SMEMBERS", key("workers")});
  for (size_t i = 0; i < workers->elements; ++i) {
    std::string worker = reply_string(workers->element[i]);
    if (is_dead_local_worker(worker, settings_.node, ::getpid())) args.push_back(worker);
    else if (is_own_lost_connection(worker, settings_.node, ::getpid(), worker_id_)) args.push_back("~" + worker);
  }
  Reply recovered = eval(recover_script, std::move(args));
  std::vector<TakenBackJob> taken_back;
  for (size_t i = 0; i + 1 < recovered->elements; i += 2)
    taken_back.push_back({reply_string(recovered->element[i]), reply_string(recovered->element[i + 1])});
  if (!taken_back.empty()) log_leases_taken_back("redis " + settings_.url.display(), taken_back);
}

void RedisSource::subscribe(std::span<const std::string> queues) {
  subscriber_ = std::make_unique<Connection>(settings_.url, settings_.timeout);
  // Keyspace notifications for list and sorted-set writes: any client's RPUSH to a
  // queue (a Resque client's too) and any ZADD of a delayed job wakes the waiters.
  Reply flags = connection_.command({"CONFIG", "GET", "notify-keyspace-events"}, true);
  std::string current = flags->type == REDIS_REPLY_ARRAY && flags->elements == 2
                            ? reply_string(flags->element[1]) : "";
  std::string wanted = current;
  for (char flag : std::string("Klz"))
    if (wanted.find(flag) == std::string::npos && !(flag != 'K' && wanted.find('A') != std::string::npos))
      wanted += flag;
  notifications_ = flags->type == REDIS_REPLY_ARRAY;
  if (notifications_ && wanted != current)
    notifications_ = connection_.command({"CONFIG", "SET", "notify-keyspace-events", wanted}, true)->type !=
                     REDIS_REPLY_ERROR;
  if (!notifications_)
    spdlog::warn("redis {}: keyspace notifications unavailable (CONFIG refused): idle workers "
                 "check the queues every 100ms instead", settings_.url.display());
  std::string prefix = "__keyspace@" + std::to_string(settings_.url.db) + "__:";
  std::vector<std::string> argv{"SUBSCRIBE", prefix + key("delayed")};
  for (const auto& queue : queues) argv.push_back(prefix + settings_.ns + ":queue:" + queue);
  subscriber_->send(argv);
  for (size_t i = 1; i < argv.size(); ++i) subscriber_->read_one();  // confirmations
}

std::optional<Job> RedisSource::fetch(std::span<const std::string> queues, milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  if (!prefetched_.empty()) {
    Job job = std::move(prefetched_.front());
    prefetched_.pop_front();
    return job;
  }
  maybe_recover();
  for (;;) {
    int64_t next_due = INT64_MAX;
    if (claim(queues, settings_.prefetch, &next_due)) return fetch(queues, wait);
    if (!subscriber_) {
      subscribe(queues);
      continue;  // a push between the claim and the subscription must not be missed
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
    if (next_due != INT64_MAX) left = std::min(left, milliseconds(std::max<int64_t>(1, next_due - now_ms())));
    left = std::min(left, std::chrono::duration_cast<milliseconds>(next_recover_ - now) + milliseconds(1));
    if (!notifications_) left = std::min(left, milliseconds(100));
    pollfd fds[2] = {{subscriber_->fd(), POLLIN, 0}, {interrupt_fd(), POLLIN, 0}};
    int n = ::poll(fds, interrupt_fd() >= 0 ? 2 : 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n > 0 && interrupt_fd() >= 0 && (fds[1].revents & POLLIN)) return std::nullopt;
    if (n > 0 && fds[0].revents) subscriber_->read_available();  // only a wake-up call
    maybe_recover();
  }
}

void RedisSource::complete(const Job& job) {
  // Sent with the next claim: ack and fetch in one round trip. A worker that dies
  // before that runs the job again (at least once), never loses it.
  if (job.lease_holder == worker_id_) pending_acks_.push_back(job.id);
  else finish(job, "done", "", 0);
}

void RedisSource::finish(const Job& job, const char* mode, const std::string& error,
                         int64_t run_at, const std::string& failure) {
  flush_acks();
  const std::string& holder = job.lease_holder.empty() ? worker_id_ : job.lease_holder;
  eval(finish_script, {settings_.ns, holder, std::to_string(now_ms()), mode, job.id, error,
                       std::to_string(run_at), failure, std::to_string(settings_.keep_done.count())});
}

void RedisSource::fail(const Job& job, std::string_view reason, RetryDecision retry) {
  std::string error = reason.empty() ? "failed" : std::string(reason);
  if (retry.retry) {
    finish(job, "retry", error, now_ms() + retry.delay.count());
    return;
  }
  finish(job, retry.attempt_ran ? "dead" : "dead_unrun", error, 0,
         resque_failure(resque_body(job.payload), job.queue, job.lease_holder, error,
                        std::chrono::system_clock::now()));
}

void RedisSource::release(const Job& job) {
  // A job given back (TERM) goes back in front of what was prefetched after it.
  release_prefetched();
  finish(job, "release", "", 0);
}

void RedisSource::release_prefetched() {
  // Each goes back to the head of its queue: the last first, so that the queue is in the
  // order the batch was taken (one by one from the front, the batch came back reversed).
  while (!prefetched_.empty()) {
    Job job = std::move(prefetched_.back());
    prefetched_.pop_back();
    finish(job, "release", "", 0);
  }
}

JobSource::Unsettled RedisSource::take_unsettled() {
  // Both stay in this connection's processing list. The finish script of the source
  // that settles them names this holder, and does nothing for a job no longer in its
  // list (recovered after a long outage, when the heartbeat had expired).
  return unsettled_jobs(std::exchange(pending_acks_, {}), prefetched_, worker_id_);
}

void RedisSource::extend_lease(const Job& job) {
  const std::string& holder = job.lease_holder.empty() ? worker_id_ : job.lease_holder;
  connection_.command({"SET", key("heartbeat:" + holder), std::to_string(now_ms()), "PX",
                       std::to_string(settings_.lease.count())});
}

EnqueueResult RedisSource::enqueue(const NewJob& job) { return enqueue_batch({&job, 1}).front(); }

std::vector<EnqueueResult> RedisSource::enqueue_batch(std::span<const NewJob> jobs) {
  std::vector<EnqueueResult> results;
  constexpr size_t chunk = 1000;
  for (size_t start = 0; start < jobs.size(); start += chunk) {
    size_t count = std::min(chunk, jobs.size() - start);
    int64_t now = now_ms();
    std::vector<std::string> args{settings_.ns, std::to_string(now), std::to_string(count)};
    for (const auto& job : jobs.subspan(start, count)) {
      int64_t run_at = job.run_at ? std::chrono::duration_cast<milliseconds>(job.run_at->time_since_epoch()).count() : now;
      args.insert(args.end(), {job.queue, resque_body(job.payload), std::to_string(run_at),
                               std::to_string(job.priority), job.unique_key,
                               std::to_string(job.max_attempts)});
    }
    // Each chunk is one script, done whole or not at all; the chunks before it are done.
    Reply reply;
    try {
      reply = eval(enqueue_script, std::move(args), true);
    } catch (const SourceError& e) {
      // No answer: the script may have run.
      std::vector<std::string> done_before;
      for (const auto& result : results) done_before.push_back(result.id);
      throw OutcomeUnknown(e.what(), std::move(done_before));
    }
    if (reply->type == REDIS_REPLY_ERROR)
      connection_.fail("script: " + std::string(reply->str, reply->len) +
                       (results.empty() ? std::string()
                                        : "; the first " + std::to_string(results.size()) +
                                              " job(s) of the batch were enqueued before it (ids " +
                                              results.front().id + " to " + results.back().id + ")"));
    for (size_t i = 0; i < reply->elements; ++i) {
      const redisReply* row = reply->element[i];
      results.push_back({reply_string(row->element[0]), to_int(row->element[1]) == 1});
    }
  }
  return results;
}

}  // namespace preforkd::redis
