// A reload's source check in a forked process (see source_check.hpp).
#include "supervisor/source_check.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <stdexcept>

#include "sources/check_sources.hpp"
#include "supervisor/child.hpp"
#include "supervisor/helper_process.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace preforkd {
namespace {

// Every descriptor but stdio and `keep`.
void close_all_but(int keep) {
  if (keep > 3 && ::close_range(3, static_cast<unsigned>(keep) - 1, 0) != 0) {
    for (int fd = 3; fd < keep; ++fd) ::close(fd);  // a kernel before 5.9: no close_range
  }
  if (::close_range(static_cast<unsigned>(keep) + 1, ~0U, 0) != 0) {
    long limit = std::min(::sysconf(_SC_OPEN_MAX), 65536L);
    for (int fd = keep + 1; fd < limit; ++fd) ::close(fd);
  }
}

// The problems, each followed by a NUL (a message may hold a newline); then exit 0.
// noexcept: an exception must never unwind into the supervisor's code in this copy of
// it (the process dies with SIGABRT instead, which the supervisor reports).
[[noreturn]] void run_check(const Config& config, int report_fd) noexcept {
  // Only the report goes back: nothing of the check is logged here, where the log file
  // is closed (below), and where a second writer would interleave with the supervisor.
  spdlog::set_level(spdlog::level::off);
  std::string report;
  try {
    for (const auto& problem : check_sources(config)) report += problem + '\0';
  } catch (const std::exception& e) {
    report += std::string("the sources could not be checked: ") + e.what() + '\0';
  }
  for (size_t done = 0; done < report.size();) {
    ssize_t n = ::write(report_fd, report.data() + done, report.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(1);
    done += static_cast<size_t>(n);
  }
  ::_exit(0);
}

}  // namespace

SourceCheck::SourceCheck(boost::asio::io_context& io, Config config,
                         std::function<void()> on_finished)
    : io_(io), config_(std::move(config)), on_finished_(std::move(on_finished)), report_(io) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(syscall_error("pipe2", "source check", errno));
  UniqueFd ours(fds[0]), theirs(fds[1]);
  pid_ = fork_helper_process("source check");
  if (pid_ == 0) {
    // Nothing of the supervisor's stays open here but stdio: a retiring fork server or a
    // spare waits for the EOF of sockets this process would otherwise hold.
    close_all_but(theirs.get());
    run_check(config_, theirs.get());
  }
  try {
    ::fcntl(ours.get(), F_SETFL, O_NONBLOCK);
    report_.assign(ours.get());
    report_fd_ = ours.release();
  } catch (...) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    throw;
  }
  read_report();
}

SourceCheck::~SourceCheck() {
  boost::system::error_code ignored;
  report_.close(ignored);
  if (wait_status_) return;
  // Not reaped yet, so the pid is still this process's.
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

void SourceCheck::read_report() {
  // A read that completed before this object was destroyed still runs its handler,
  // with its real result: the token tells it that `this` is gone.
  report_.async_read_some(boost::asio::buffer(chunk_),
                          [this, alive = std::weak_ptr<char>(alive_)](
                              const boost::system::error_code& ec, size_t n) {
                            if (alive.expired()) return;
                            report_text_.append(chunk_.data(), n);
                            if (!ec) return read_report();
                            report_complete_ = true;  // EOF: the process exited or died
                            maybe_finished();
                          });
}

void SourceCheck::reaped(int wait_status) {
  wait_status_ = wait_status;
  maybe_finished();
}

void SourceCheck::maybe_finished() {
  // Posted, so that the supervisor may destroy this object from on_finished.
  if (finished()) boost::asio::post(io_, on_finished_);
}

std::vector<std::string> SourceCheck::problems() const {
  if (!wait_status_ || !WIFEXITED(*wait_status_) || WEXITSTATUS(*wait_status_) != 0)
    return {fmt::format("the sources could not be checked: the check process (pid {}) {}", pid_,
                        wait_status_ ? describe_exit(*wait_status_) : "did not finish")};
  std::vector<std::string> problems;
  for (size_t start = 0, end; (end = report_text_.find('\0', start)) != std::string::npos;
       start = end + 1)
    problems.push_back(report_text_.substr(start, end - start));
  return problems;
}

}  // namespace preforkd
