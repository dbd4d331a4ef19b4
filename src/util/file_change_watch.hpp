// Wakes a waiting process when another process writes one file in a directory
// (inotify on the directory, so the file may be deleted and created again, as
// SQLite's -wal file is). The SQLite source waits on it instead of polling.
#pragma once

#include <chrono>
#include <string>

#include "util/unique_fd.hpp"

namespace preforkd {

class FileChangeWatch {
 public:
  // Watches `directory` for writes to `file_name`. When inotify cannot be used (out of
  // instances or watches), says so in the log and wait() then returns every
  // poll_interval at the latest: the caller looks again, as if the file had changed.
  FileChangeWatch(const std::string& directory, std::string file_name);
  static constexpr std::chrono::milliseconds poll_interval{100};

  // Forgets the changes seen so far. Call before looking at the file, then wait():
  // a write between the two still wakes wait() at once.
  void drain();
  // Waits until the file changes, `extra_fd` (if >= 0) is readable, or `timeout`
  // passes. Returns true when woken by `extra_fd`.
  bool wait(std::chrono::milliseconds timeout, int extra_fd);

 private:
  UniqueFd inotify_;
  std::string file_name_;
  bool changed_ = false;
};

}  // namespace preforkd
