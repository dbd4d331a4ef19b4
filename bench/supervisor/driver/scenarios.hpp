// The measured scenarios. Each starts its own supervisor (or bare loop), measures from
// the children's reports on the FIFO, and stops what it started before returning.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "events.hpp"
#include "processes.hpp"

namespace bench {

struct Bench {
  const Paths& paths;
  EventLog& events;
  std::vector<std::string> notes;  // anomalies seen (e.g. a supervisor that ignored TERM)
  // Stops `process` with TERM; notes it when it had to be KILLed.
  void stop(Process& process, const std::string& what,
            std::chrono::milliseconds grace = std::chrono::seconds(10));
};

// Launch -> the Nth child ready, ms (median over `reps` launches).
std::optional<double> cold_start(Bench& bench, const Side& side, int n, int reps);
std::optional<double> cold_start_bare(Bench& bench, bool exec, int n, int reps);

// Children that are ready then exit 0: readies per second over `seconds`.
std::optional<double> churn(Bench& bench, const Side& side, int workers, double seconds);
std::optional<double> churn_bare(Bench& bench, bool exec, double seconds);

struct Latency {
  double median_ms = 0, p99_ms = 0;
  int samples = 0;
};
// kill -9 of one child -> its replacement ready.
std::optional<Latency> respawn_latency(Bench& bench, const Side& side, int workers, int kills);
// fork -> the child ready (fork+exec, or fork only).
std::optional<Latency> respawn_latency_bare(Bench& bench, bool exec, int kills);

struct Reload {
  double new_ready_ms = 0;     // HUP -> every child of the new generation ready
  double old_gone_ms = 0;      // HUP -> every old child has exited
  double longest_work_ms = 0;  // HUP -> the last old piece of work done
  int started = 0, done = 0, cut_off = 0;  // old pieces of work begun / finished / not
  int reps = 0;
  double complete_ms() const { return new_ready_ms > old_gone_ms ? new_ready_ms : old_gone_ms; }
};
// `reps` HUPs, each with every child busy in a `work_ms` piece of work; medians.
std::optional<Reload> reload(Bench& bench, const Side& side, int workers, int reps, int work_ms);

struct Idle {
  double cpu_seconds = 0;  // utime+stime over the window
  double run_seconds = 0;  // schedstat over the window (ns precision)
  long rss_kib = 0, hwm_kib = 0;
};
std::optional<Idle> idle(Bench& bench, const Side& side, int workers, double seconds);

double median(std::vector<double> values);
double percentile(std::vector<double> values, double p);

}  // namespace bench
