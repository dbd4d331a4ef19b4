// sd_notify for Type=notify units: READY, RELOADING, STOPPING, STATUS and the
// watchdog. Every call is a no-op when NOTIFY_SOCKET is not set.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <string>

namespace preforkd {

class SystemdNotifier {
 public:
  explicit SystemdNotifier(boost::asio::io_context& io);

  void ready();
  void reloading();
  void stopping();
  // STATUS= is rate limited to one message a second: children churn fast, and systemd
  // only shows the latest anyway.
  void status(std::string text);

 private:
  void send(const std::string& message);
  void arm_watchdog();
  void flush_status();
  // "\nSTATUS=..." for a status not yet sent (marked sent), else "".
  std::string status_assignment();

  bool enabled_ = false;
  boost::asio::steady_timer watchdog_timer_;
  std::chrono::microseconds watchdog_interval_{0};
  boost::asio::steady_timer status_timer_;
  bool status_timer_armed_ = false;
  std::string pending_status_;
  std::string sent_status_;
  std::chrono::steady_clock::time_point last_status_sent_{};
};

}  // namespace preforkd
