// What the children tell the supervisor on their status sockets (ready, busy, idle, a
// request done, a clean end, a failed start), and the end of such a socket.
#include <boost/asio/post.hpp>
#include <cstring>

#include "supervisor/supervisor.hpp"
#include "util/log.hpp"

namespace preforkd {
namespace {

// What a child that could not start was doing (child_fail's step), with the path or user.
std::string describe_start_failure(const PoolConfig* pool, char step, int err) {
  std::string why = std::strerror(err);
  if (!pool) return why;
  switch (step) {
    case 'c': return "chdir(" + pool->working_directory + "): " + why;
    case 'u':
      return "switching to user " + pool->user + (pool->group.empty() ? "" : " group " + pool->group) +
             ": " + why;
    case 'x':
      return pool->command.empty() ? why : "execve(" + pool->command.front() + "): " + why;
    default: return why;
  }
}

}  // namespace

void Supervisor::read_status(const std::shared_ptr<Child>& child) {
  // A wait, and the read here: bytes that asio had read into a buffer for a handler
  // not run yet would be out of reach of read_reports at the child's reap.
  child->status.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           [this, child](const boost::system::error_code& ec) {
                             if (ec == boost::asio::error::operation_aborted) return;
                             if (ec) {
                               if (child->status.is_open()) on_status_closed(child);
                               return;
                             }
                             on_status_readable(child);
                           });
}

void Supervisor::on_status_readable(const std::shared_ptr<Child>& child) {
  if (!child->status.is_open()) return;  // reaped (and closed) since the wait completed
  Unread left = read_reports(*child, false);
  if (left == Unread::closed) {
    on_status_closed(child);
    return;
  }
  update_readiness();
  if (left == Unread::none) {
    read_status(child);
    return;
  }
  // A child that writes without pause gets its turn again after everyone else's: the
  // wait would not see the bytes already there, a posted read does.
  boost::asio::post(io_, [this, child] { on_status_readable(child); });
}

Supervisor::Unread Supervisor::read_reports(Child& child, bool reaped) {
  // At most this much at a time from a live child; all of what a reaped one left.
  constexpr int reads_per_turn = 16;
  for (int reads = 0; reaped || reads < reads_per_turn; ++reads) {
    ssize_t got = ::recv(child.status.native_handle(), child.read_buffer.data(),
                         child.read_buffer.size(), MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? Unread::none : Unread::closed;
    if (got == 0) return Unread::closed;
    for (const auto& report :
         child.status_reader.feed(std::string_view(child.read_buffer.data(), static_cast<size_t>(got))))
      if (!(reaped && report.kind == StatusReport::Kind::done)) on_status(child, report);
    // Less than a buffer: that was all. A later write wakes the next wait: the event
    // loop has one thread, so that wait is queued before epoll is asked again.
    if (static_cast<size_t>(got) < child.read_buffer.size()) return Unread::none;
  }
  return Unread::maybe_more;
}

void Supervisor::on_status(Child& child, const StatusReport& report) {
  switch (report.kind) {
    case StatusReport::Kind::ready:
      if (child.state == Child::State::starting) child.state = Child::State::idle;
      break;
    case StatusReport::Kind::busy:
      child.state = Child::State::busy;
      child.busy_with = report.detail;
      break;
    case StatusReport::Kind::idle:
      child.state = Child::State::idle;
      child.busy_with.clear();
      // A jobs worker reports once per run of back-to-back jobs: "I <count>".
      child.requests += report.detail.empty() ? 1u : static_cast<unsigned>(std::max(1, std::atoi(report.detail.c_str())));
      break;
    case StatusReport::Kind::done:
      on_child_done(child);
      break;
    case StatusReport::Kind::exec_failed: {
      int err = std::atoi(report.detail.c_str());
      child.exec_errno = err;
      char step = report.detail.empty() ? '?' : report.detail.back();
      auto pool = pools_.find(child.pool);
      const PoolConfig* config = pool == pools_.end() ? nullptr : pool->second->config.get();
      spdlog::error("pool={} pid={} could not start: {}", child.pool, child.pid,
                    describe_start_failure(config, step, err));
      break;
    }
  }
}

void Supervisor::on_child_done(Child& child) {
  if (child.done || child.execs) return;
  child.done = true;
  spdlog::debug("pool={} pid={} is done and exiting: replacing it now", child.pool, child.pid);
  PoolRuntime* pool = running_pool_of(child);
  if (pool && !child.stopping) reconcile(*pool);
}

PoolRuntime* Supervisor::running_pool_of(const Child& child) {
  if (phase_ != Phase::running || child.generation != generation_) return nullptr;
  auto it = pools_.find(child.pool);
  return it == pools_.end() ? nullptr : it->second.get();
}

void Supervisor::on_status_closed(const std::shared_ptr<Child>& child) {
  auto it = children_.find(child->pid);
  if (it == children_.end() || it->second != child) return;
  // For an exec'd child the socket closes on exec (close-on-exec): it is running.
  if (child->execs && child->state == Child::State::starting && !child->exec_errno) {
    child->state = Child::State::idle;
    update_readiness();
  }
  child->status.close();
}

}  // namespace preforkd
