// Logger set-up: sinks and formats chosen by LogConfig, and reopen for logrotate.
#include "util/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "util/json_text.hpp"
#include "util/reopening_file_sink.hpp"

namespace preforkd {
namespace {

LogConfig current_config;
std::shared_ptr<ReopeningFileSink> current_file_sink;

// How many times the log file was reopened, in memory shared with every child forked
// after the first configure_logging (see reopening_file_sink.hpp).
std::atomic<uint64_t>& reopen_generation() {
  static std::atomic<uint64_t>* generation = [] {
    void* page = ::mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + std::strerror(errno));
    return new (page) std::atomic<uint64_t>(0);
  }();
  return *generation;
}

// One JSON object per line, for log shippers: {"time","level","msg"}.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    time_.format(msg, time_buf_);
    nlohmann::json line = {
        {"time", std::string(time_buf_.data(), time_buf_.size())},
        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                              spdlog::level::to_string_view(msg.level).size())},
        {"pid", ::getpid()},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    time_buf_.clear();
    auto text = json_text(line);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  spdlog::pattern_formatter time_{"%Y-%m-%dT%H:%M:%S.%e%z", spdlog::pattern_time_type::local, ""};
  spdlog::memory_buf_t time_buf_;
};

std::unique_ptr<spdlog::formatter> make_formatter(LogFormat format) {
  if (format == LogFormat::json) return std::make_unique<JsonFormatter>();
  return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e%z [%P] %l: %v");
}

}  // namespace

void configure_logging(const LogConfig& config) {
  spdlog::sink_ptr sink;
  std::shared_ptr<ReopeningFileSink> file_sink;
  if (config.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_st>();
  } else {
    file_sink = std::make_shared<ReopeningFileSink>(config.file, reopen_generation());
    sink = file_sink;
  }
  sink->set_formatter(make_formatter(config.format));
  auto logger = std::make_shared<spdlog::logger>("preforkd", sink);
  logger->set_level(spdlog::level::from_str(config.level));
  // Every line is flushed: the supervisor logs rarely, and a line stuck in a buffer
  // when a child forks would be written twice.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  current_config = config;
  current_file_sink = std::move(file_sink);
}

void reopen_log_file() {
  if (!current_file_sink) return;
  // Bumped first: the forked children follow even when the supervisor's own open
  // fails (theirs fail the same way and they keep their file too).
  reopen_generation().fetch_add(1, std::memory_order_relaxed);
  try {
    current_file_sink->reopen();
  } catch (const std::exception& e) {
    spdlog::error("USR1: {}; still writing to the file opened before (fix the path and "
                  "send USR1 again)",
                  e.what());
    return;
  }
  spdlog::info("log file reopened: {}", current_config.file);
}

void follow_log_reopen() {
  if (current_file_sink) current_file_sink->follow();  // a failure: the file it has stays
}

void follow_log_reopen_between_jobs() {
  if (current_file_sink) current_file_sink->follow_and_say_failure_later();
}

std::string syscall_error(const char* call, const std::string& argument, int err) {
  // A limit the operator can raise: say which and where.
  const char* hint =
      err == EMFILE ? " (the open-file limit: raise ulimit -n, or LimitNOFILE= under systemd)" : "";
  return fmt::format("{}({}): {}{}", call, argument, std::strerror(err), hint);
}

}  // namespace preforkd
