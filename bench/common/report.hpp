// The figures as bench_redis and bench_postgres print them: numbers with "n/a" for a
// figure not taken, and the closing "ratio / target" table.
#pragma once

#include <string>
#include <vector>

namespace bench {

// printf(format, v), or "n/a" for NAN.
std::string fmt(double v, const char* format = "%.0f");

class TargetTable {
 public:
  // a / b, with `target` as the wanted minimum (none when <= 0); n/a when either is missing.
  void ratio(const std::string& what, double a, double b, double target);
  // A row as shown; met: 1 met, 0 missed, -1 no target or not measured.
  void add(const std::string& what, const std::string& shown, const std::string& target, int met);
  void print() const;

 private:
  struct Row {
    std::string what, shown, target;
    int met;
  };
  std::vector<Row> rows_;
};

}  // namespace bench
