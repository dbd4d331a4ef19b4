// The reopening log file sink (see reopening_file_sink.hpp).
#include "util/reopening_file_sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace preforkd {

ReopeningFileSink::ReopeningFileSink(std::string path, const std::atomic<uint64_t>& generation)
    : path_(std::move(path)),
      generation_(generation),
      seen_generation_(generation.load(std::memory_order_relaxed)),
      fd_(open_file(path_)) {}

UniqueFd ReopeningFileSink::open_file(const std::string& path) {
  // O_NONBLOCK: a named pipe put at the path with no reader would hold the open, and
  // the supervisor with it (no respawn, TERM unheard), until something read from it.
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0) {
    int err = errno;
    throw spdlog::spdlog_ex("cannot open " + path + " for writing: " + std::strerror(err) +
                            (err == ENXIO ? " (a named pipe that nobody reads: give a regular file)" : ""));
  }
  // Writes block again as they always did (a pipe with a reader, a terminal).
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return UniqueFd(fd);
}

void ReopeningFileSink::reopen() {
  seen_generation_ = generation_.load(std::memory_order_relaxed);
  fd_ = open_file(path_);  // on failure fd_ is untouched
}

std::optional<std::string> ReopeningFileSink::follow() {
  if (generation_.load(std::memory_order_relaxed) == seen_generation_) return std::nullopt;
  try {
    reopen();
  } catch (const spdlog::spdlog_ex& e) {
    return e.what();
  }
  return std::nullopt;
}

void ReopeningFileSink::follow_and_say_failure_later() {
  if (auto error = follow()) unsaid_failure_ = std::move(error);
}

void ReopeningFileSink::sink_it_(const spdlog::details::log_msg& msg) {
  std::optional<std::string> error = std::exchange(unsaid_failure_, std::nullopt);
  if (!error) error = follow();
  if (error) {
    // Keep the file this process has. The supervisor's own reopen may well have worked
    // (a child running as another `user:` cannot open a file only root may write), so
    // say it here, once, in the file that goes on getting this process's lines.
    std::string why = fmt::format("pid {}: {}; this process goes on writing to the file it "
                                  "had (a child started after the USR1 writes to the new one)",
                                  ::getpid(), *error);
    write_line(spdlog::details::log_msg(msg.logger_name, spdlog::level::warn, why));
  }
  write_line(msg);
}

void ReopeningFileSink::write_line(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  formatter_->format(msg, line);
  const char* data = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_.get(), data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw spdlog::spdlog_ex("cannot write to " + path_ + ": " + std::strerror(errno));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace preforkd
