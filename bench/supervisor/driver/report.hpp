// The figures side by side: one table per kind of child (scenario, preforkd,
// Parallel::Prefork, ratio, bare limit) and the targets, met or not.
#pragma once

#include <deque>
#include <optional>
#include <string>

#include "processes.hpp"
#include "scenarios.hpp"

namespace bench {

enum class Better { lower, higher, none };

struct Row {
  std::string title, unit;
  Better better;
  std::optional<double> preforkd, prefork, bare;
  std::string text_preforkd, text_prefork;  // instead of a number (e.g. "0 / 24")
  // How many times better preforkd is than Parallel::Prefork (>1: preforkd better).
  std::optional<double> ratio() const;
};

struct Section {
  Children kind;
  std::deque<Row> rows;  // a deque: references handed out by add() stay valid
  std::optional<Reload> reload_preforkd, reload_prefork;
  Row& add(std::string title, std::string unit, Better better);
  const Row* find(const std::string& title_prefix) const;
};

class Report {
 public:
  Section& section(Children kind) { return kind == Children::in_process ? in_process_ : exec_; }
  void print() const;
  // Prints each target with MET / NOT MET / not measured; returns 0.
  int print_targets() const;

 private:
  Section in_process_{Children::in_process, {}, {}, {}};
  Section exec_{Children::exec, {}, {}, {}};
};

std::string fmt_num(double value, int decimals);
std::string fmt_ms(std::optional<double> ms);
std::string fmt_rate(std::optional<double> per_second);

}  // namespace bench
