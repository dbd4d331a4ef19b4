#include "common/report.hpp"

#include <cmath>
#include <cstdio>

namespace bench {

std::string fmt(double v, const char* format) {
  if (std::isnan(v)) return "n/a";
  char b[48];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

void TargetTable::ratio(const std::string& what, double a, double b, double target) {
  double q = (std::isnan(a) || std::isnan(b) || b <= 0) ? NAN : a / b;
  char tgt[32] = "";
  if (target > 0) std::snprintf(tgt, sizeof tgt, ">= %.1fx", target);
  rows_.push_back({what, std::isnan(q) ? "n/a" : fmt(q, q >= 10 ? "%.1fx" : "%.2fx"), tgt,
                   target <= 0 || std::isnan(q) ? -1 : q >= target});
}

void TargetTable::add(const std::string& what, const std::string& shown, const std::string& target, int met) {
  rows_.push_back({what, shown, target, met});
}

void TargetTable::print() const {
  std::printf("%-58s %10s %9s  %s\n", "ratio / target", "measured", "wanted", "");
  std::printf("%-58s %10s %9s  %s\n", "----------------------------------------------------------", "----------",
              "---------", "----");
  for (const auto& row : rows_)
    std::printf("%-58s %10s %9s  %s\n", row.what.c_str(), row.shown.c_str(), row.target.c_str(),
                row.met < 0 ? "" : row.met ? "met" : "MISSED");
}

}  // namespace bench
