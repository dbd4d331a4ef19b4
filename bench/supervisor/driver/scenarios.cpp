// The scenarios (see scenarios.hpp). All times come from the children's own
// CLOCK_MONOTONIC stamps, compared with the bench's stamp of the action (launch, kill,
// HUP), so the FIFO reader's latency is not part of any figure.
#include "scenarios.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

namespace bench {
namespace {

using std::chrono::milliseconds;

double ms_between(long long from_ns, long long to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e6;
}

void sleep_ms(double ms) {
  std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(ms * 1000)));
}

// The first report of each pid with `tag`, in time order.
std::vector<Event> firsts(const std::vector<Event>& events, char tag,
                          const std::set<pid_t>& exclude = {}) {
  std::vector<Event> out;
  std::set<pid_t> seen;
  for (const auto& e : events)
    if (e.tag == tag && !exclude.count(e.pid) && seen.insert(e.pid).second) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) { return a.ns < b.ns; });
  return out;
}

bool wait_ready(Bench& bench, size_t mark, size_t n, milliseconds timeout,
                const std::set<pid_t>& exclude = {}) {
  return bench.events.wait_until(
      mark, [&](const std::vector<Event>& ev) { return firsts(ev, 'R', exclude).size() >= n; },
      timeout);
}

void say_failure(const std::string& what, const Process& process) {
  std::fprintf(stderr, "bench: %s timed out; see %s\n", what.c_str(), process.log_path().c_str());
}

// Every report with `tag`, in time order. Not one per pid: past 32768 children (10 s of
// churn at a few thousand per second) the kernel hands pids out again.
std::vector<Event> all_with_tag(const std::vector<Event>& events, char tag) {
  std::vector<Event> out;
  for (const auto& e : events)
    if (e.tag == tag) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) { return a.ns < b.ns; });
  return out;
}

std::optional<double> rate_in_window(const std::vector<Event>& events, double warmup_s,
                                     double seconds) {
  auto ready = all_with_tag(events, 'R');
  if (ready.empty()) return std::nullopt;
  long long from = ready.front().ns + static_cast<long long>(warmup_s * 1e9);
  long long to = from + static_cast<long long>(seconds * 1e9);
  if (ready.back().ns < to - 50'000'000) return std::nullopt;  // it stopped early
  auto count = std::count_if(ready.begin(), ready.end(),
                             [&](const Event& e) { return e.ns >= from && e.ns < to; });
  return static_cast<double>(count) / seconds;
}

Latency summarize(std::vector<double> samples) {
  Latency l;
  l.samples = static_cast<int>(samples.size());
  l.median_ms = median(samples);
  l.p99_ms = percentile(samples, 0.99);
  return l;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

void Bench::stop(Process& process, const std::string& what, std::chrono::milliseconds grace) {
  long long asked = now_ns();
  if (!process.stop(grace))
    notes.push_back(what + ": the supervisor did not exit within " +
                    std::to_string(grace.count() / 1000) + " s of TERM and was KILLed");
  else if (ms_between(asked, now_ns()) > 1000)
    notes.push_back(what + ": the supervisor took " + std::to_string(static_cast<int>(
                        ms_between(asked, now_ns()))) + " ms to exit after TERM");
}

double median(std::vector<double> values) { return percentile(std::move(values), 0.5); }

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  // Nearest rank: with 50 samples p99 is the largest.
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

std::optional<double> cold_start(Bench& bench, const Side& side, int n, int reps) {
  std::vector<double> times;
  for (int rep = 0; rep < reps; ++rep) {
    Launch launch = prepare_supervisor(bench.paths, side, n, "idle");
    size_t mark = bench.events.size();
    long long launched = 0;
    auto process = spawn(launch, &launched);
    if (!wait_ready(bench, mark, n, std::chrono::seconds(60))) {
      say_failure(side.label() + " cold start of " + std::to_string(n), *process);
      return std::nullopt;
    }
    auto ready = firsts(bench.events.since(mark), 'R');
    times.push_back(ms_between(launched, ready[n - 1].ns));
    bench.stop(*process, side.label() + " cold start " + std::to_string(n));
  }
  return median(times);
}

std::optional<double> cold_start_bare(Bench& bench, bool exec, int n, int reps) {
  std::vector<double> times;
  for (int rep = 0; rep < reps; ++rep) {
    Launch launch = prepare_bare(bench.paths, exec, {"burst", std::to_string(n)});
    size_t mark = bench.events.size();
    long long launched = 0;
    auto process = spawn(launch, &launched);
    if (!wait_ready(bench, mark, n, std::chrono::seconds(60))) {
      say_failure("bare burst of " + std::to_string(n), *process);
      return std::nullopt;
    }
    auto ready = firsts(bench.events.since(mark), 'R');
    times.push_back(ms_between(launched, ready[n - 1].ns));
    process->wait_exit(std::chrono::seconds(10));
  }
  return median(times);
}

constexpr double churn_warmup_s = 0.5;

std::optional<double> churn(Bench& bench, const Side& side, int workers, double seconds) {
  size_t mark = bench.events.size();
  auto process = start_supervisor(bench.paths, side, workers, "exit");
  if (!wait_ready(bench, mark, 1, std::chrono::seconds(30))) {
    say_failure(side.label() + " churn", *process);
    return std::nullopt;
  }
  long long first = firsts(bench.events.since(mark), 'R').front().ns;
  sleep_ms(ms_between(now_ns(), first) + (churn_warmup_s + seconds) * 1000 + 100);
  bench.stop(*process, side.label() + " churn", std::chrono::seconds(5));
  return rate_in_window(bench.events.since(mark), churn_warmup_s, seconds);
}

std::optional<double> churn_bare(Bench& bench, bool exec, double seconds) {
  size_t mark = bench.events.size();
  auto process = start_bare(bench.paths, exec,
                            {"churn", std::to_string(churn_warmup_s + seconds + 0.2)});
  process->wait_exit(milliseconds(static_cast<long long>(seconds * 1000) + 30000));
  return rate_in_window(bench.events.since(mark), churn_warmup_s, seconds);
}

std::optional<Latency> respawn_latency(Bench& bench, const Side& side, int workers, int kills) {
  size_t mark = bench.events.size();
  auto process = start_supervisor(bench.paths, side, workers, "idle");
  if (!wait_ready(bench, mark, workers, std::chrono::seconds(30))) {
    say_failure(side.label() + " respawn latency start", *process);
    return std::nullopt;
  }
  std::vector<pid_t> live;
  std::set<pid_t> seen;
  for (const auto& e : firsts(bench.events.since(mark), 'R')) {
    live.push_back(e.pid);
    seen.insert(e.pid);
  }
  sleep_ms(200);
  std::vector<double> samples;
  for (int k = 0; k < kills; ++k) {
    pid_t victim = live.front();
    live.erase(live.begin());
    size_t before = bench.events.size();
    long long killed_at = now_ns();
    ::kill(victim, SIGKILL);
    if (!wait_ready(bench, before, 1, std::chrono::seconds(10), seen)) {
      say_failure(side.label() + " respawn after kill -9", *process);
      return std::nullopt;
    }
    Event replacement = firsts(bench.events.since(before), 'R', seen).front();
    samples.push_back(ms_between(killed_at, replacement.ns));
    live.push_back(replacement.pid);
    seen.insert(replacement.pid);
    sleep_ms(20);
  }
  bench.stop(*process, side.label() + " respawn latency");
  return summarize(samples);
}

std::optional<Latency> respawn_latency_bare(Bench& bench, bool exec, int kills) {
  size_t mark = bench.events.size();
  auto process = start_bare(bench.paths, exec, {"latency", std::to_string(kills)});
  process->wait_exit(std::chrono::seconds(60));
  std::map<pid_t, long long> forked;
  for (const auto& e : bench.events.since(mark))
    if (e.tag == 'F') forked[e.pid] = e.ns;
  std::vector<double> samples;
  for (const auto& e : firsts(bench.events.since(mark), 'R'))
    if (forked.count(e.pid)) samples.push_back(ms_between(forked[e.pid], e.ns));
  if (samples.empty()) return std::nullopt;
  return summarize(samples);
}

std::optional<Reload> reload(Bench& bench, const Side& side, int workers, int reps, int work_ms) {
  size_t mark = bench.events.size();
  auto process = start_supervisor(bench.paths, side, workers, "work", work_ms);
  if (!wait_ready(bench, mark, workers, std::chrono::seconds(30))) {
    say_failure(side.label() + " reload start", *process);
    return std::nullopt;
  }
  std::set<pid_t> live, seen;
  for (const auto& e : firsts(bench.events.since(mark), 'R')) live.insert(e.pid);
  seen = live;
  std::vector<double> new_ready, old_gone, longest;
  Reload total;
  for (int rep = 0; rep < reps; ++rep) {
    sleep_ms(100);
    size_t before = bench.events.size();
    for (pid_t pid : live) ::kill(pid, SIGUSR1);
    bool all_busy = bench.events.wait_until(
        before, [&](const std::vector<Event>& ev) { return firsts(ev, 'B').size() >= live.size(); },
        std::chrono::seconds(10));
    if (!all_busy) {
      say_failure(side.label() + " reload: children starting work", *process);
      return std::nullopt;
    }
    std::vector<int> pidfds;
    for (pid_t pid : live) pidfds.push_back(pidfd_open(pid));
    long long hup_at = now_ns();
    process->signal(SIGHUP);

    // The old children's exits, as the bench sees them (a pidfd is readable once its
    // process has exited, reaped or not).
    long long last_gone = hup_at;
    size_t remaining = pidfds.size();
    auto deadline = now_ns() + 20'000'000'000LL;
    while (remaining > 0 && now_ns() < deadline) {
      std::vector<pollfd> fds;
      for (int fd : pidfds)
        if (fd >= 0) fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 1000) <= 0) continue;
      long long now = now_ns();
      for (const auto& p : fds) {
        if (!p.revents) continue;
        for (int& fd : pidfds)
          if (fd == p.fd) {
            ::close(fd);
            fd = -1;
            --remaining;
            last_gone = now;
          }
      }
    }
    for (int fd : pidfds)
      if (fd >= 0) ::close(fd);
    if (remaining > 0 ||
        !wait_ready(bench, before, live.size(), std::chrono::seconds(20), seen)) {
      say_failure(side.label() + " reload", *process);
      return std::nullopt;
    }
    // Every old child has exited, but the FIFO reader may not have read its last lines
    // yet: give it a moment to drain before a missing "D" counts as work cut off.
    bench.events.wait_until(
        before,
        [&](const std::vector<Event>& ev) {
          std::map<pid_t, int> open;
          for (const auto& e : ev)
            if (live.count(e.pid)) open[e.pid] += e.tag == 'B' ? 1 : e.tag == 'D' ? -1 : 0;
          for (const auto& [pid, n] : open)
            if (n > 0) return false;
          return true;
        },
        std::chrono::seconds(1));
    auto events = bench.events.since(before);
    auto fresh = firsts(events, 'R', seen);
    new_ready.push_back(ms_between(hup_at, fresh[live.size() - 1].ns));
    old_gone.push_back(ms_between(hup_at, last_gone));
    long long last_done = hup_at;
    std::map<pid_t, int> begun, finished;
    for (const auto& e : events) {
      if (!live.count(e.pid)) continue;
      if (e.tag == 'B') ++begun[e.pid];
      if (e.tag == 'D') {
        ++finished[e.pid];
        last_done = std::max(last_done, e.ns);
      }
    }
    longest.push_back(ms_between(hup_at, last_done));
    for (pid_t pid : live) {
      if (begun[pid] > finished[pid])
        bench.notes.push_back(side.label() + " reload " + std::to_string(rep + 1) + ": pid " +
                              std::to_string(pid) + " began work and never finished it");
      total.started += begun[pid];
      total.done += finished[pid];
      total.cut_off += std::max(0, begun[pid] - finished[pid]);
    }
    live.clear();
    for (size_t i = 0; i < fresh.size() && live.size() < static_cast<size_t>(workers); ++i)
      live.insert(fresh[i].pid);
    seen.insert(live.begin(), live.end());
    ++total.reps;
  }
  bench.stop(*process, side.label() + " reload");
  total.new_ready_ms = median(new_ready);
  total.old_gone_ms = median(old_gone);
  total.longest_work_ms = median(longest);
  return total;
}

std::optional<Idle> idle(Bench& bench, const Side& side, int workers, double seconds) {
  size_t mark = bench.events.size();
  auto process = start_supervisor(bench.paths, side, workers, "idle");
  if (!wait_ready(bench, mark, workers, std::chrono::seconds(60))) {
    say_failure(side.label() + " idle start", *process);
    return std::nullopt;
  }
  sleep_ms(1000);  // let start-up settle: the window measures idling only
  ProcStat before = read_proc_stat(process->pid());
  sleep_ms(seconds * 1000);
  ProcStat after = read_proc_stat(process->pid());
  bench.stop(*process, side.label() + " idle");
  Idle result;
  result.cpu_seconds = after.cpu_seconds - before.cpu_seconds;
  result.run_seconds = after.run_seconds - before.run_seconds;
  result.rss_kib = after.rss_kib;
  result.hwm_kib = after.hwm_kib;
  return result;
}

}  // namespace bench
