// systemd notify protocol over libsystemd's sd_notify (see systemd_notifier.hpp).
#include "supervisor/systemd_notifier.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cerrno>
#include <cstdlib>

#include "util/log.hpp"

namespace preforkd {

SystemdNotifier::SystemdNotifier(boost::asio::io_context& io)
    : enabled_(std::getenv("NOTIFY_SOCKET") != nullptr),
      watchdog_timer_(io),
      status_timer_(io) {
  uint64_t usec = 0;
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    // Half the interval, as sd_watchdog_enabled(3) recommends.
    watchdog_interval_ = std::chrono::microseconds(usec / 2);
    spdlog::info("systemd watchdog enabled: WATCHDOG=1 every {}ms",
                 watchdog_interval_.count() / 1000);
    arm_watchdog();
  }
}

void SystemdNotifier::ready() {
  // With the status of that moment, which the once-a-second limit may still hold back:
  // `systemctl status` must not show "0/3 up" beside "active".
  send("READY=1" + status_assignment());
}

void SystemdNotifier::reloading() {
  // MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match this reload.
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t usec = static_cast<uint64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void SystemdNotifier::stopping() { send("STOPPING=1"); }

void SystemdNotifier::status(std::string text) {
  if (!enabled_) return;
  pending_status_ = std::move(text);
  if (status_timer_armed_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_status_sent_ >= std::chrono::seconds(1)) {
    flush_status();
    return;
  }
  status_timer_armed_ = true;
  status_timer_.expires_at(last_status_sent_ + std::chrono::seconds(1));
  status_timer_.async_wait([this](const boost::system::error_code& ec) {
    status_timer_armed_ = false;
    if (!ec) flush_status();
  });
}

void SystemdNotifier::flush_status() {
  std::string status = status_assignment();
  last_status_sent_ = std::chrono::steady_clock::now();
  if (!status.empty()) send(status.substr(1));
}

std::string SystemdNotifier::status_assignment() {
  if (pending_status_.empty() || pending_status_ == sent_status_) return "";
  sent_status_ = pending_status_;
  last_status_sent_ = std::chrono::steady_clock::now();
  return "\nSTATUS=" + sent_status_;
}

void SystemdNotifier::send(const std::string& message) {
  if (!enabled_) return;
  int rc = sd_notify(0, message.c_str());
  if (rc == -ELIBACC)
    spdlog::warn("NOTIFY_SOCKET is set but libsystemd.so.0 cannot be loaded; install it "
                 "(apt-get install libsystemd0) so systemd hears {}", message);
  else if (rc < 0)
    spdlog::warn("sd_notify({}) failed: {}", message, std::strerror(-rc));
}

void SystemdNotifier::arm_watchdog() {
  watchdog_timer_.expires_after(watchdog_interval_);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    send("WATCHDOG=1");
    arm_watchdog();
  });
}

}  // namespace preforkd
