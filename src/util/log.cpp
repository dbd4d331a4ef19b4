// Logger set-up: sinks and formats chosen by LogConfig, and reopen for logrotate.
#include "util/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstring>
#include <nlohmann/json.hpp>

namespace preforkd {
namespace {

LogConfig current_config;

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
    auto text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
  if (config.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_st>();
  } else {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_st>(config.file, false);
  }
  sink->set_formatter(make_formatter(config.format));
  auto logger = std::make_shared<spdlog::logger>("preforkd", sink);
  logger->set_level(spdlog::level::from_str(config.level));
  // Every line is flushed: the supervisor logs rarely, and a line stuck in a buffer
  // when a child forks would be written twice.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  current_config = config;
}

void reopen_log_file() {
  if (current_config.file.empty()) return;
  configure_logging(current_config);
  spdlog::info("log file reopened: {}", current_config.file);
}

std::string syscall_error(const char* call, const std::string& argument, int err) {
  return fmt::format("{}({}): {}", call, argument, std::strerror(err));
}

}  // namespace preforkd
