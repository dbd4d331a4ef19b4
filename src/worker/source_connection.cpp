// Reconnect with backoff, logged once per outage (see source_connection.hpp).
#include "worker/source_connection.hpp"

#include <poll.h>
#include <unistd.h>

#include <utility>

#include "util/log.hpp"

namespace preforkd {
namespace {

constexpr Duration first_backoff{100};
constexpr Duration max_backoff{5000};

}  // namespace

SourceConnection::SourceConnection(const PoolConfig& pool, const SourceConfig& source,
                                   ForkedChildContext& context)
    : pool_(pool), config_(source), context_(context) {}

SourceConnection::~SourceConnection() {
  size_t done = carried_.done.size(), not_started = carried_.not_started.size();
  if (done + not_started > 0)
    spdlog::warn("pool={} pid={}: source '{}' still unreachable at exit: {} finished and {} "
                 "unstarted job(s) not recorded; they run again when their lease expires",
                 pool_.name, ::getpid(), config_.name, done, not_started);
}

JobSource* SourceConnection::get() {
  if (source_) {
    // Asked again without a broken() since: what the last caller did with it worked.
    // Only that ends an outage: a source that opens but fails at its first statement
    // (a database that cannot be written, a full disk) must keep growing the backoff.
    if (in_outage_) end_outage();
    return source_.get();
  }
  if (backoff_.count() > 0) wait_backoff();
  try {
    source_ = open_job_source(config_);
    source_->set_interrupt_fd(ForkedChildContext::stop_fd());
    settle_carried();
  } catch (const std::exception& e) {
    broken(e);
    return nullptr;
  }
  return source_.get();
}

void SourceConnection::end_outage() {
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - outage_started_);
  spdlog::info("pool={} pid={}: source '{}' reachable again after {:.1f}s", pool_.name, ::getpid(),
               config_.name, seconds.count());
  in_outage_ = false;
  carried_said_ = false;
  backoff_ = Duration{0};
}

void SourceConnection::settle_carried() {
  size_t done = carried_.done.size(), not_started = carried_.not_started.size();
  if (done + not_started == 0) return;
  while (!carried_.done.empty()) {
    source_->complete(carried_.done.back());
    carried_.done.pop_back();
  }
  // The last first: each goes back to the head of its queue, which keeps their order.
  while (!carried_.not_started.empty()) {
    source_->release(carried_.not_started.back());
    carried_.not_started.pop_back();
  }
  // Reported again, not known to be written: a deferred ack goes with the next statement,
  // and a job whose lease ran out during the outage may have run again elsewhere.
  if (std::exchange(carried_said_, true)) return;
  spdlog::info("pool={} pid={}: source '{}': {} job(s) finished before the failure reported again "
               "(one whose lease ran out meanwhile may have run again elsewhere), {} leased and not "
               "started given back",
               pool_.name, ::getpid(), config_.name, done, not_started);
}

void SourceConnection::broken(const std::exception& error) {
  if (source_) {
    // Taken before the source is closed: its destructor would try to write them on the
    // connection that just failed, and give up.
    JobSource::Unsettled left = source_->take_unsettled();
    for (Job& job : left.done) carried_.done.push_back(std::move(job));
    carried_.not_started.insert(carried_.not_started.end(), std::make_move_iterator(left.not_started.begin()),
                                std::make_move_iterator(left.not_started.end()));
  }
  source_.reset();
  auto now = std::chrono::steady_clock::now();
  if (!in_outage_) {
    in_outage_ = true;
    outage_started_ = last_outage_log_ = now;
    outage_error_ = error.what();
    spdlog::error("pool={} pid={}: source '{}' failed: {}; reconnecting with backoff (up to {}ms)",
                  pool_.name, ::getpid(), config_.name, error.what(), max_backoff.count());
  } else if (error.what() != outage_error_ || now - last_outage_log_ >= std::chrono::minutes(1)) {
    // The first error of an outage is seldom its lasting cause (a dropped connection,
    // then a password changed meanwhile): a new cause is said at once, the same one once
    // a minute.
    last_outage_log_ = now;
    outage_error_ = error.what();
    auto seconds = std::chrono::duration<double>(now - outage_started_).count();
    spdlog::error("pool={} pid={}: source '{}' still failing after {:.0f}s: {}", pool_.name, ::getpid(),
                  config_.name, seconds, error.what());
  }
  backoff_ = backoff_.count() == 0 ? first_backoff : std::min(backoff_ * 2, max_backoff);
}

void SourceConnection::wait_backoff() {
  // A QUIT leaves the stop flag set, so wait_for_stop would return at once: while
  // stopping (recording a finished job's result) sleep plainly instead.
  if (!context_.stop_requested()) context_.wait_for_stop(backoff_);
  else ::poll(nullptr, 0, static_cast<int>(backoff_.count()));
}

}  // namespace preforkd
