// Reconnect with backoff, logged once per outage (see source_connection.hpp).
#include "worker/source_connection.hpp"

#include <poll.h>
#include <unistd.h>

#include "util/log.hpp"

namespace preforkd {
namespace {

constexpr Duration first_backoff{100};
constexpr Duration max_backoff{5000};

}  // namespace

SourceConnection::SourceConnection(const PoolConfig& pool, const SourceConfig& source,
                                   ForkedChildContext& context)
    : pool_(pool), config_(source), context_(context) {}

JobSource* SourceConnection::get() {
  if (source_) return source_.get();
  if (backoff_.count() > 0) wait_backoff();
  try {
    source_ = open_job_source(config_);
    source_->set_interrupt_fd(ForkedChildContext::stop_fd());
  } catch (const std::exception& e) {
    broken(e);
    return nullptr;
  }
  if (in_outage_) {
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - outage_started_);
    spdlog::info("pool={} pid={}: source '{}' reachable again after {:.1f}s", pool_.name, ::getpid(),
                 config_.name, seconds.count());
    in_outage_ = false;
  }
  backoff_ = Duration{0};
  return source_.get();
}

void SourceConnection::broken(const std::exception& error) {
  source_.reset();
  if (!in_outage_) {
    in_outage_ = true;
    outage_started_ = std::chrono::steady_clock::now();
    spdlog::error("pool={} pid={}: source '{}' failed: {}; reconnecting with backoff (up to {}ms)",
                  pool_.name, ::getpid(), config_.name, error.what(), max_backoff.count());
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
