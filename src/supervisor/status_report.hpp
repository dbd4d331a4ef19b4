// The child -> supervisor status channel: one short line per state change, written
// on a pipe the supervisor reads from its event loop.
//
//   R            ready (a command child is ready when exec succeeds: EOF, no line)
//   B <what>     busy with <what> (a job id, a request)
//   I            idle again (one more request served)
//   E <errno>    exec failed in the child, with errno
//   X            done: the function returned 0 and the child is exiting (its replacement
//                may start while the kernel tears the old one down)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd {

struct StatusReport {
  enum class Kind { ready, busy, idle, exec_failed, done } kind;
  std::string detail;  // what it is busy with; errno text for exec_failed
};

std::string encode_status(const StatusReport& report);

// Accumulates bytes from the pipe and hands out complete reports; malformed lines are
// returned as nullopt entries' absence (skipped), never as a crash.
class StatusReader {
 public:
  std::vector<StatusReport> feed(std::string_view bytes);

 private:
  std::string partial_;
};

std::optional<StatusReport> parse_status_line(std::string_view line);

}  // namespace preforkd
