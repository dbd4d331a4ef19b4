// The repeated runs of one scenario and their medians, for drivers whose runs carry a
// rate (jobs/s, NAN when the run failed), a second rate where the scenario has one
// (NAN otherwise), and their own work figures (bench_redis, bench_postgres).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/report.hpp"
#include "common/stats.hpp"

namespace bench {

template <class Run>
struct ScenarioRuns {
  bool attempted = false;
  std::vector<Run> runs;  // the good ones
  double rate = NAN, rate2 = NAN;
  Run representative;  // the median run, for the work figures
};

// Adds one run (a failed one only counts as attempted) and recomputes the medians.
template <class Run>
void add_run(ScenarioRuns<Run>& m, const Run& run) {
  m.attempted = true;
  if (!std::isnan(run.rate)) m.runs.push_back(run);
  if (m.runs.empty()) return;
  std::vector<Run> sorted = m.runs;
  std::sort(sorted.begin(), sorted.end(), [](const Run& a, const Run& b) { return a.rate < b.rate; });
  std::vector<double> rates, rates2;
  for (const auto& r : m.runs) {
    rates.push_back(r.rate);
    if (!std::isnan(r.rate2)) rates2.push_back(r.rate2);
  }
  m.rate = median(rates);
  m.rate2 = median(rates2);
  m.representative = sorted[sorted.size() / 2];
}

// The median rate (or the second one) as shown in the tables: "skipped" when --only
// left the scenario out, "failed" when no run succeeded.
template <class Run>
std::string shown(const ScenarioRuns<Run>& m, bool second = false) {
  if (!m.attempted) return "skipped";
  return std::isnan(second ? m.rate2 : m.rate) ? "failed" : fmt(second ? m.rate2 : m.rate);
}

// "  (runs: a b c)" when there was more than one good run, else "".
template <class Run>
std::string runs_of(const ScenarioRuns<Run>& m) {
  if (m.runs.size() <= 1) return "";
  std::string s = "  (runs:";
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on
  // " " + std::string inlined here.
  for (const auto& r : m.runs) {
    s += ' ';
    s += fmt(r.rate);
  }
  s += ')';
  return s;
}

}  // namespace bench
