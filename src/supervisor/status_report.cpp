// Framing and parsing of the child status lines (see status_report.hpp).
#include "supervisor/status_report.hpp"

namespace preforkd {

std::string encode_status(const StatusReport& report) {
  char tag = '?';
  switch (report.kind) {
    case StatusReport::Kind::ready: tag = 'R'; break;
    case StatusReport::Kind::busy: tag = 'B'; break;
    case StatusReport::Kind::idle: tag = 'I'; break;
    case StatusReport::Kind::exec_failed: tag = 'E'; break;
    case StatusReport::Kind::done: tag = 'X'; break;
  }
  // Built from the tag rather than assigned a literal: GCC 12 warns (-Wrestrict, a false
  // positive, its bug 105329) about `line = "R"` inlined at -O2.
  std::string line(1, tag);
  if (!report.detail.empty()) {
    line += ' ';
    // A newline in the detail would split the report in two.
    for (char c : report.detail) line += (c == '\n' || c == '\r') ? ' ' : c;
  }
  line += '\n';
  return line;
}

std::optional<StatusReport> parse_status_line(std::string_view line) {
  if (line.empty()) return std::nullopt;
  std::string detail;
  if (line.size() > 2 && line[1] == ' ') detail.assign(line.substr(2));
  else if (line.size() != 1) return std::nullopt;
  switch (line[0]) {
    case 'R': return StatusReport{StatusReport::Kind::ready, std::move(detail)};
    case 'B': return StatusReport{StatusReport::Kind::busy, std::move(detail)};
    case 'I': return StatusReport{StatusReport::Kind::idle, std::move(detail)};
    case 'E': return StatusReport{StatusReport::Kind::exec_failed, std::move(detail)};
    case 'X': return StatusReport{StatusReport::Kind::done, std::move(detail)};
    default: return std::nullopt;
  }
}

std::vector<StatusReport> StatusReader::feed(std::string_view bytes) {
  std::vector<StatusReport> reports;
  partial_.append(bytes);
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (auto report = parse_status_line(std::string_view(partial_).substr(start, nl - start)))
      reports.push_back(std::move(*report));
  }
  partial_.erase(0, start);
  // A child that never sends a newline must not grow the supervisor without bound.
  if (partial_.size() > 4096) partial_.clear();
  return reports;
}

}  // namespace preforkd
