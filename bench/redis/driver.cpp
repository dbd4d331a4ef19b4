// bench_redis: preforkd's Redis source against BullMQ, Sidekiq and redis-benchmark, in
// one run, on one throwaway redis-server that this program starts (127.0.0.1, a free
// port, a temp dir, no persistence) and stops. Every process it starts is tracked by pid,
// has a deadline, and is stopped by pid (and dies with it: PR_SET_PDEATHSIG).
//
//   bench_redis [--jobs N] [--latency-jobs N] [--latency-gap-ms MS] [--repeat R]
//               [--only LIST] [--keep] [--quick]
//
// Sections (see bench/redis/README.md):
//   drain     N pre-enqueued no-op jobs (preforkctl enqueue --batch), 2 workers, in_process
//             and persistent handler, prefetch 1 and 20: from the daemon's start until the
//             INCR counter resque:stat:processed reaches N (GET every 20 ms, one connection)
//   bullmq    N jobs pre-added with addBulk; one node process, 2 Workers x concurrency 5;
//             from the Workers' creation (and from the process start) until
//             ZCARD bull:bench:completed reaches N
//   sidekiq   N jobs pushed with push_bulk; 2 sidekiq processes x concurrency 5; from the
//             processes' start (boot included) and from the first job's start (boot
//             excluded) until the last job's end
//   benchmark redis-benchmark -c 2 -n 100000 -t lpush,rpop (unpipelined): the raw limit
//   latency   enqueue-to-start on an idle in_process pool (library enqueue(), 1 at a time)
#include <hiredis/hiredis.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/cpu_time.hpp"
#include "common/files.hpp"
#include "common/latency.hpp"
#include "common/options.hpp"
#include "common/polling.hpp"
#include "common/processes.hpp"
#include "common/program.hpp"
#include "common/report.hpp"
#include "common/scenario_runs.hpp"
#include "common/servers.hpp"
#include "common/stats.hpp"
#include "common/timing.hpp"
#include "preforkd/config.hpp"
#include "preforkd/job_source.hpp"

namespace {

using namespace bench;
namespace fs = std::filesystem;

using Options = CommonOptions;  // no options of its own

// ---------------------------------------------------------------- redis

class Redis {
 public:
  explicit Redis(int port) {
    timeval tv{10, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c_ || c_->err) throw std::runtime_error(c_ ? c_->errstr : "redisConnect");
    redisSetTimeout(c_, tv);
  }
  ~Redis() {
    if (c_) redisFree(c_);
  }
  Redis(const Redis&) = delete;
  Redis& operator=(const Redis&) = delete;

  // One command; the reply as text (integer as digits, nil as "", array: first element).
  std::string cmd(const std::vector<std::string>& argv) {
    std::vector<const char*> a;
    std::vector<size_t> l;
    for (const auto& s : argv) {
      a.push_back(s.data());
      l.push_back(s.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(a.size()), a.data(), l.data()));
    if (!r) die("redis: " + argv[0] + ": " + c_->errstr);
    std::string out;
    if (r->type == REDIS_REPLY_INTEGER) out = std::to_string(r->integer);
    else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) out.assign(r->str, r->len);
    else if (r->type == REDIS_REPLY_ERROR) out = "ERR:" + std::string(r->str, r->len);
    freeReplyObject(r);
    return out;
  }
  long long num(const std::vector<std::string>& argv) {
    std::string s = cmd(argv);
    return s.empty() ? 0 : std::atoll(s.c_str());
  }
  // Polls every `every_ms` until pred(value) or the deadline (or `watched` exits).
  long long wait_until(const std::vector<std::string>& argv, const std::function<bool(long long)>& pred,
                       double deadline_s, int every_ms, const std::vector<pid_t>& watched = {}) {
    return poll_until([&] { return num(argv); }, pred, deadline_s, every_ms, watched);
  }
  std::map<std::string, std::string> info(const std::string& section) {
    std::map<std::string, std::string> out;
    std::istringstream in(cmd({"INFO", section}));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon != std::string::npos && line[0] != '#') out[line.substr(0, colon)] = line.substr(colon + 1);
    }
    return out;
  }
  double cpu_seconds() {
    auto i = info("cpu");
    return std::atof(i["used_cpu_sys"].c_str()) + std::atof(i["used_cpu_user"].c_str());
  }

 private:
  redisContext* c_ = nullptr;
};

struct Server {
  pid_t pid = -1;
  int port = 0;
  std::string dir;
};

Server start_redis() {
  Server server;
  server.dir = make_temp_dir("server");
  for (int attempt = 0; attempt < 5; ++attempt) {
    server.port = free_port();
    server.pid = spawn({"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(server.port),
                        "--save", "", "--appendonly", "no", "--dir", server.dir, "--daemonize", "no",
                        "--logfile", server.dir + "/redis.log"},
                       {}, "", "", server.dir + "/redis.err");
    auto answers = [&] {
      try {
        return Redis(server.port).cmd({"PING"}) == "PONG";
      } catch (const std::exception&) {
        return false;
      }
    };
    if (wait_until_serving(server.pid, 500, 20, answers)) return server;
  }
  die("redis-server did not start; log:\n" + tail_of(server.dir + "/redis.log"));
}

// A clean server for the next scenario: no keys, no scripts, no keyspace notifications
// (preforkd turns them on for itself; the peers do not use them), counters at zero.
void reset(Redis& r) {
  r.cmd({"FLUSHALL"});
  r.cmd({"SCRIPT", "FLUSH"});
  r.cmd({"CONFIG", "SET", "notify-keyspace-events", ""});
  r.cmd({"CONFIG", "RESETSTAT"});
}

// Redis-side work during a measured window: CPU of the server and commands (calls made
// from Lua scripts are counted under their own command as well).
struct RedisWork {
  double cpu_s = 0;
  std::map<std::string, long long> calls;
  std::map<std::string, double> usec;
};

RedisWork redis_work(Redis& r, double cpu_before) {
  RedisWork w;
  w.cpu_s = r.cpu_seconds() - cpu_before;
  for (const auto& [key, value] : r.info("commandstats")) {
    if (key.rfind("cmdstat_", 0) != 0) continue;
    std::string name = key.substr(8);
    if (name == "info" || name == "get" || name == "zcard" || name == "llen" || name == "config") continue;  // the poller
    auto field = [&](const char* f) {
      auto p = value.find(std::string(f) + "=");
      return p == std::string::npos ? 0.0 : std::atof(value.c_str() + p + std::strlen(f) + 1);
    };
    w.calls[name] = static_cast<long long>(field("calls"));
    w.usec[name] = field("usec");
  }
  return w;
}

// ---------------------------------------------------------------- results

// One drain run: jobs/s (NAN: failed), a second figure where it has one, and the CPU.
struct Run {
  double rate = NAN;
  double rate2 = NAN;     // BullMQ: from process start; Sidekiq: boot excluded
  double client_cpu_us = NAN;  // per job, the workers' processes (all of them)
  RedisWork work;
  int n = 0;
  double elapsed = 0;
};

using Measured = ScenarioRuns<Run>;  // representative: for the CPU and commandstats

Measured repeat(int times, const std::function<Run()>& fn) {
  Measured m;
  for (int i = 0; i < times; ++i) add_run(m, fn());
  return m;
}

std::vector<std::string> problems;

// ---------------------------------------------------------------- preforkd

enum class Kind { in_process, persistent };
const char* kind_name(Kind k) { return k == Kind::in_process ? "in_process" : "persistent (C no-op)"; }

std::string write_config(const TempDir& dir, int port, Kind kind, int prefetch) {
  std::string handler = kind == Kind::in_process ? "in_process" : std::string("{ persistent: [") + BENCH_PERSISTENT + "] }";
  std::string path = dir / "preforkd.yaml";
  write_file(path, "log: { level: warn }\n"
                   "sources:\n"
                   "  shared: { type: redis, url: \"redis://127.0.0.1:" + std::to_string(port) +
                   "/0\", prefetch: " + std::to_string(prefetch) + " }\n"
                   "pools:\n"
                   "  noop:\n"
                   "    source: shared\n"
                   "    queues: [bench]\n"
                   "    workers: 2\n"
                   "    handler: " + handler + "\n");
  return path;
}

std::vector<std::string> daemon_argv(Kind kind, const std::string& config) {
  return {kind == Kind::in_process ? BENCH_INPROC : BENCH_PREFORKD, "-c", config};
}

Run preforkd_drain_once(const Server& server, Redis& r, Kind kind, int prefetch, int n, const Options& options) {
  Run run;
  run.n = n;
  TempDir dir("drain", options.keep);
  std::string config = write_config(dir, server.port, kind, prefetch);
  reset(r);
  std::string input;
  for (int i = 0; i < n; ++i) input += "{\"n\":" + std::to_string(i) + "}\n";
  write_file(dir / "payloads", input);
  std::string label = std::string("preforkd ") + kind_name(kind) + " prefetch " + std::to_string(prefetch);
  if (!run_quiet({BENCH_PREFORKCTL, "-c", config, "enqueue", "bench", "--batch"}, {}, dir / "payloads",
                 "", dir / "ctl.err", 120) ||
      r.num({"LLEN", "resque:queue:bench"}) != n) {
    problems.push_back(label + ": preforkctl enqueue failed:\n" + tail_of(dir / "ctl.err"));
    return run;
  }
  r.cmd({"CONFIG", "RESETSTAT"});
  double cpu0 = r.cpu_seconds();
  std::string log = dir / "daemon.log";
  long long t0 = now_ns();
  pid_t daemon = spawn(daemon_argv(kind, config), {}, "", log, log);
  long long got = r.wait_until({"GET", "resque:stat:processed"}, [n](long long c) { return c >= n; }, 300, 20, {daemon});
  run.elapsed = seconds_since(t0);
  if (is_live(daemon)) run.client_cpu_us = tree_cpu_seconds({daemon}) * 1e6 / n;
  run.work = redis_work(r, cpu0);
  stop_process(daemon, SIGQUIT, 20);
  long long failed = r.num({"GET", "resque:stat:failed"});
  // After a graceful stop every processing list must be empty (all acked).
  std::string held = r.cmd({"EVAL",
                            "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                            "n = n + redis.call('LLEN', k) end return n",
                            "0", "resque:preforkd:processing:*"});
  if (got >= n && failed == 0 && held == "0") run.rate = n / run.elapsed;
  else problems.push_back(label + ": " + std::to_string(got) + "/" + std::to_string(n) + " processed, " +
                          std::to_string(failed) + " failed, " + held + " still in processing lists; log:\n" +
                          tail_of(log));
  return run;
}

// ---------------------------------------------------------------- peers

const std::string peer_dir = BENCH_REDIS_DIR;

Run bullmq_once(const Server& server, Redis& r, int n, const Options& options) {
  Run run;
  run.n = n;
  TempDir dir("bullmq", options.keep);
  reset(r);
  std::string script = peer_dir + "/bullmq_peer.js";
  std::string port = std::to_string(server.port);
  if (!run_quiet({"node", script, "add", port, std::to_string(n)}, {}, "", "", dir / "add.err", 180) ||
      r.num({"LLEN", "bull:bench:wait"}) != n) {
    problems.push_back("BullMQ addBulk failed (" + std::to_string(r.num({"LLEN", "bull:bench:wait"})) +
                       " waiting):\n" + tail_of(dir / "add.err"));
    return run;
  }
  r.cmd({"CONFIG", "RESETSTAT"});
  double cpu0 = r.cpu_seconds();
  long long t0 = now_ns();
  pid_t node = spawn({"node", script, "work", port, "400"}, {}, "", dir / "work.out", dir / "work.err");
  long long got = r.wait_until({"ZCARD", "bull:bench:completed"}, [n](long long c) { return c >= n; }, 300, 20, {node});
  long long end = now_ns();
  if (is_live(node)) run.client_cpu_us = tree_cpu_seconds({node}) * 1e6 / n;
  run.work = redis_work(r, cpu0);
  stop_process(node, SIGTERM, 15);
  long long failed = r.num({"ZCARD", "bull:bench:failed"});
  long long start = 0;
  std::istringstream out(read_file(dir / "work.out"));
  for (std::string word; out >> word;)
    if (word == "start") out >> start;
  if (got >= n && failed == 0 && start > t0 && start < end) {
    run.elapsed = static_cast<double>(end - start) / 1e9;
    run.rate = n / run.elapsed;                                     // from the Workers' creation
    run.rate2 = n / (static_cast<double>(end - t0) / 1e9);          // from the process start
  } else {
    problems.push_back("BullMQ drain: " + std::to_string(got) + "/" + std::to_string(n) + " completed, " +
                       std::to_string(failed) + " failed:\n" + tail_of(dir / "work.err"));
  }
  return run;
}

Run sidekiq_once(const Server& server, Redis& r, int n, const Options& options) {
  Run run;
  run.n = n;
  TempDir dir("sidekiq", options.keep);
  reset(r);
  std::string script = peer_dir + "/sidekiq_peer.rb";
  std::string url = "REDIS_URL=redis://127.0.0.1:" + std::to_string(server.port) + "/0";
  if (!run_quiet({"ruby", script, "push", std::to_string(n)}, {url}, "", "", dir / "push.err", 180) ||
      r.num({"LLEN", "queue:default"}) != n) {
    problems.push_back("Sidekiq push_bulk failed:\n" + tail_of(dir / "push.err"));
    return run;
  }
  r.cmd({"CONFIG", "RESETSTAT"});
  double cpu0 = r.cpu_seconds();
  std::string stats = dir / "stats";
  long long t0 = now_ns();
  std::vector<pid_t> procs;
  for (int i = 0; i < 2; ++i)
    procs.push_back(spawn({"sidekiq", "-r", script, "-c", "5", "-q", "default", "-t", "10"},
                          {url, "BENCH_SIDEKIQ_OUT=" + stats}, "", dir / "sidekiq.log", dir / "sidekiq.log", dir.path()));
  // Every job fetched (basic fetch: BRPOP, one job per processor thread at a time)...
  long long left = r.wait_until({"LLEN", "queue:default"}, [](long long c) { return c == 0; }, 300, 20, procs);
  bool running = std::all_of(procs.begin(), procs.end(), is_live);
  if (running) run.client_cpu_us = tree_cpu_seconds(procs) * 1e6 / n;
  run.work = redis_work(r, cpu0);
  // ...then TERM: the jobs in flight finish, each process writes its count and times.
  for (pid_t p : procs) ::kill(p, SIGTERM);
  for (pid_t p : procs)
    if (!wait_for(p, 20, nullptr)) stop_process(p, SIGKILL, 5);
  long long count = 0, first = 0, last = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (entry.path().filename().string().rfind("stats.", 0) != 0) continue;
    std::istringstream in(read_file(entry.path()));
    long long c = 0, f = 0, l = 0;
    in >> c >> f >> l;
    count += c;
    if (c > 0) {
      first = first == 0 ? f : std::min(first, f);
      last = std::max(last, l);
    }
  }
  if (left == 0 && running && count == n && first > t0 && last >= first) {
    run.elapsed = static_cast<double>(last - t0) / 1e9;
    run.rate = n / run.elapsed;                                         // boot included
    run.rate2 = n / (static_cast<double>(last - first) / 1e9);         // boot excluded
  } else {
    problems.push_back("Sidekiq drain: " + std::to_string(left) + " left in the queue, " +
                       std::to_string(count) + "/" + std::to_string(n) + " counted by the jobs; log:\n" +
                       tail_of(dir / "sidekiq.log"));
  }
  return run;
}

struct Bench {
  double lpush = NAN, rpop = NAN;
};

Bench redis_benchmark_once(const Server& server, Redis& r, const Options& options) {
  Bench b;
  TempDir dir("benchmark", options.keep);
  reset(r);
  if (run_quiet({"redis-benchmark", "-h", "127.0.0.1", "-p", std::to_string(server.port), "-c", "2", "-n",
                 "100000", "-t", "lpush,rpop", "--csv"},
                {}, "", dir / "out.csv", dir / "err", 300)) {
    std::istringstream in(read_file(dir / "out.csv"));
    for (std::string line; std::getline(in, line);) {
      // "LPUSH","43478.26",...
      auto q1 = line.find('"'), q2 = line.find('"', q1 + 1), q3 = line.find('"', q2 + 1);
      if (q1 == std::string::npos || q3 == std::string::npos) continue;
      std::string test = line.substr(q1 + 1, q2 - q1 - 1);
      double rps = std::atof(line.c_str() + q3 + 1);
      if (test == "LPUSH") b.lpush = rps;
      else if (test == "RPOP") b.rpop = rps;
    }
  }
  if (std::isnan(b.lpush) || std::isnan(b.rpop))
    problems.push_back("redis-benchmark failed:\n" + tail_of(dir / "err") + tail_of(dir / "out.csv"));
  return b;
}

// ---------------------------------------------------------------- latency

struct Latency {
  std::vector<double> ms;
};

Latency latency_run(const Server& server, Redis& r, const Options& options) {
  TempDir dir("latency", options.keep);
  reset(r);
  std::string config_path = write_config(dir, server.port, Kind::in_process, 1);
  preforkd::Config config = preforkd::load_config(config_path, false);
  auto source = preforkd::open_job_source(config.sources.at("shared"));
  std::string log = dir / "daemon.log", lat_file = dir / "latency.txt";
  pid_t daemon = spawn(daemon_argv(Kind::in_process, config_path), {"BENCH_LATENCY_FILE=" + lat_file}, "", log, log);
  LatencySamples samples = measure_latency(*source, daemon, lat_file, log, options.latency_jobs, options.latency_gap_ms,
                                           [&] { return r.num({"GET", "resque:stat:processed"}); });
  problems.insert(problems.end(), samples.problems.begin(), samples.problems.end());
  return {samples.ms};
}

// ---------------------------------------------------------------- report

void print_work(const std::string& name, const Measured& m) {
  if (m.runs.empty()) return;
  const Run& r = m.representative;
  double per_job = r.work.cpu_s * 1e6 / r.n;
  std::printf("  %-36s redis CPU %6.1f us/job (%3.0f%% of one core), clients %s us/job; per job:",
              name.c_str(), per_job, r.elapsed > 0 ? 100 * r.work.cpu_s / r.elapsed : 0.0,
              fmt(r.client_cpu_us, "%.1f").c_str());
  std::vector<std::pair<long long, std::string>> by_calls;
  for (const auto& [cmd, calls] : r.work.calls) by_calls.push_back({calls, cmd});
  std::sort(by_calls.rbegin(), by_calls.rend());
  int shown_cmds = 0;
  for (const auto& [calls, cmd] : by_calls) {
    if (static_cast<double>(calls) / r.n < 0.02 || ++shown_cmds > 24) continue;
    std::printf(" %s %.2g", cmd.c_str(), static_cast<double>(calls) / r.n);
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  set_program("bench_redis", "benchredis");
  Options options;
  for (Args args(argc, argv); args.next();) {
    if (!take_common_option(args, options)) {
      std::fprintf(stderr,
                   "usage: bench_redis [--jobs N] [--latency-jobs N] [--latency-gap-ms MS] [--repeat R] [--quick] "
                   "[--keep]\n       [--only in_process,persistent,bullmq,sidekiq,benchmark,latency]\n");
      return 2;
    }
  }
  if (options.jobs < 1 || options.latency_jobs < 1) die("counts must be >= 1");
  install_signal_handlers();

  Server server = start_redis();
  Redis r(server.port);
  const int n = options.jobs;
  std::printf("preforkd redis bench: %d no-op jobs per drain, %d latency samples %d ms apart, median of %d run(s)\n",
              n, options.latency_jobs, options.latency_gap_ms, options.repeat);
  std::printf("machine: %u cpu(s); redis-server %s on 127.0.0.1:%d (pid %d, no persistence, %s)\n\n",
              std::thread::hardware_concurrency(), r.info("server")["redis_version"].c_str(), server.port,
              server.pid, server.dir.c_str());
  std::fflush(stdout);

  struct Variant {
    Kind kind;
    int prefetch;
    std::string name;
    Measured m;
  };
  std::vector<Variant> variants = {{Kind::in_process, 1, "in_process, prefetch 1", {}},
                                   {Kind::in_process, 20, "in_process, prefetch 20", {}},
                                   {Kind::persistent, 1, "persistent, prefetch 1", {}},
                                   {Kind::persistent, 20, "persistent, prefetch 20", {}}};
  for (auto& v : variants) {
    if (!options.wants(v.kind == Kind::in_process ? "in_process" : "persistent")) continue;
    v.m = repeat(options.repeat, [&] { return preforkd_drain_once(server, r, v.kind, v.prefetch, n, options); });
    std::printf("  drain preforkd %-26s %8s jobs/s%s\n", v.name.c_str(), shown(v.m).c_str(), runs_of(v.m).c_str());
    std::fflush(stdout);
  }
  Measured bull, sidekiq;
  if (options.wants("bullmq")) {
    bull = repeat(options.repeat, [&] { return bullmq_once(server, r, n, options); });
    std::printf("  drain %-35s %8s jobs/s (%s from the node process start)%s\n", "BullMQ (2 Workers x 5)",
                shown(bull).c_str(), shown(bull, true).c_str(), runs_of(bull).c_str());
    std::fflush(stdout);
  }
  if (options.wants("sidekiq")) {
    sidekiq = repeat(options.repeat, [&] { return sidekiq_once(server, r, n, options); });
    std::printf("  drain %-35s %8s jobs/s boot included, %s boot excluded%s\n", "Sidekiq (2 procs x 5)",
                shown(sidekiq).c_str(), shown(sidekiq, true).c_str(), runs_of(sidekiq).c_str());
    std::fflush(stdout);
  }
  Bench bench;
  if (options.wants("benchmark")) {
    std::vector<double> lp, rp;
    for (int i = 0; i < options.repeat; ++i) {
      Bench b = redis_benchmark_once(server, r, options);
      if (!std::isnan(b.lpush)) lp.push_back(b.lpush);
      if (!std::isnan(b.rpop)) rp.push_back(b.rpop);
    }
    bench.lpush = median(lp);
    bench.rpop = median(rp);
    std::printf("  redis-benchmark -c 2 -n 100000: LPUSH %s/s, RPOP %s/s\n", fmt(bench.lpush).c_str(),
                fmt(bench.rpop).c_str());
    std::fflush(stdout);
  }
  Latency lat;
  if (options.wants("latency")) lat = latency_run(server, r, options);
  double p50 = percentile(lat.ms, 50), p99 = percentile(lat.ms, 99);
  double pmax = lat.ms.empty() ? NAN : *std::max_element(lat.ms.begin(), lat.ms.end());
  std::printf("  enqueue-to-start (in_process, prefetch 1, idle, %zu samples, %d ms apart): p50 %s ms  p99 %s ms  max %s ms\n\n",
              lat.ms.size(), options.latency_gap_ms, fmt(p50, "%.2f").c_str(), fmt(p99, "%.2f").c_str(),
              fmt(pmax, "%.2f").c_str());

  // Where the work goes (the median run of each).
  std::printf("Redis and client work during each drain (INFO cpu / commandstats; clients: /proc of the workers):\n");
  for (const auto& v : variants) print_work("preforkd " + v.name, v.m);
  print_work("BullMQ", bull);
  print_work("Sidekiq", sidekiq);
  std::printf("\n");

  std::printf("%-44s %12s\n", "drain, no-op jobs, 20 ms polling", "jobs/s");
  std::printf("%-44s %12s\n", "--------------------------------------------", "------------");
  for (const auto& v : variants) std::printf("preforkd %-35s %12s\n", v.name.c_str(), shown(v.m).c_str());
  std::printf("%-44s %12s\n", "BullMQ, 1 process, 2 Workers x 5", shown(bull).c_str());
  std::printf("%-44s %12s\n", "  (from node process start)", shown(bull, true).c_str());
  std::printf("%-44s %12s\n", "Sidekiq, 2 processes x 5, boot included", shown(sidekiq).c_str());
  std::printf("%-44s %12s\n", "Sidekiq, boot excluded", shown(sidekiq, true).c_str());
  std::printf("%-44s %12s\n", "redis-benchmark LPUSH -c 2 (limit)", fmt(bench.lpush).c_str());
  std::printf("%-44s %12s\n\n", "redis-benchmark RPOP -c 2 (limit)", fmt(bench.rpop).c_str());

  TargetTable targets;
  for (const auto& v : variants) targets.ratio("preforkd " + v.name + " / BullMQ", v.m.rate, bull.rate, 1.2);
  for (const auto& v : variants) targets.ratio("preforkd " + v.name + " / Sidekiq (boot incl.)", v.m.rate, sidekiq.rate, 0);
  for (const auto& v : variants) targets.ratio("preforkd " + v.name + " / Sidekiq (boot excl.)", v.m.rate, sidekiq.rate2, 0);
  for (const auto& v : variants) targets.ratio("preforkd " + v.name + " / redis-benchmark RPOP", v.m.rate, bench.rpop, 0);
  targets.ratio("BullMQ / redis-benchmark RPOP", bull.rate, bench.rpop, 0);
  targets.ratio("Sidekiq (boot excl.) / redis-benchmark RPOP", sidekiq.rate2, bench.rpop, 0);
  targets.add("enqueue-to-start p50", fmt(p50, "%.2f ms"), "< 2 ms", std::isnan(p50) ? -1 : p50 < 2);
  targets.add("enqueue-to-start p99", fmt(p99, "%.2f ms"), "", -1);
  targets.print();

  for (const auto& p : problems) std::fprintf(stderr, "\nbench_redis: problem: %s\n", p.c_str());
  stop_process(server.pid, SIGTERM, 10);
  if (!options.keep) fs::remove_all(server.dir);
  kill_leftovers();
  return problems.empty() ? 0 : 1;
}
