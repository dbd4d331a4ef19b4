// bench_jobs: the jobs half of preforkd against TheSchwartz, bare SQLite and bare
// fork+exec, in one run. Every scenario runs in its own fresh temporary directory,
// every process it starts is tracked by pid, has a deadline and is stopped by pid.
//
//   bench_jobs [--jobs N] [--schwartz-jobs N] [--latency-jobs N] [--repeat R] [--keep]
//
// Sections (see bench/jobs/README.md):
//   drain     N pre-filled no-op jobs, 2 workers, per handler kind: time from the daemon's
//             start to "all done" (COUNT on the SQLite file every 10 ms, read-only)
//   enqueue   preforkctl enqueue --batch (whole process), library enqueue() one by one,
//             library enqueue_batch(), TheSchwartz insert() one by one
//   latency   enqueue-to-start on an idle in-process pool: payload {"t": CLOCK_MONOTONIC ns}
//   peers     TheSchwartz drain (2 perl workers), raw SQLite claim+complete (2 processes),
//             plain fork+exec of /bin/true + waitpid (2 processes)
#include <malloc.h>
#include <spawn.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/files.hpp"
#include "common/latency.hpp"
#include "common/options.hpp"
#include "common/polling.hpp"
#include "common/processes.hpp"
#include "common/program.hpp"
#include "common/stats.hpp"
#include "common/timing.hpp"
#include "preforkd/config.hpp"
#include "preforkd/job_source.hpp"

extern char** environ;

namespace {

using namespace bench;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- small helpers

struct Options : CommonOptions {
  int exec_jobs = 0;  // drain of the exec handler and the fork+exec peer; 0: = jobs
  int schwartz_jobs = 2000;
  int prefetch = 20;  // the batched drains of persistent and in_process (also run at 1)
};

// Read-only COUNT on a SQLite file while others write it (WAL: never blocks them).
class Counter {
 public:
  Counter(const std::string& path, std::string sql) : sql_(std::move(sql)) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
      die("sqlite open " + path + ": " + sqlite3_errmsg(db_));
    sqlite3_busy_timeout(db_, 5000);
    if (sqlite3_prepare_v2(db_, sql_.c_str(), -1, &stmt_, nullptr) != SQLITE_OK)
      die("sqlite prepare " + sql_ + ": " + sqlite3_errmsg(db_));
  }
  ~Counter() {
    sqlite3_finalize(stmt_);
    sqlite3_close(db_);
  }
  long long count() {
    long long n = -1;
    if (sqlite3_step(stmt_) == SQLITE_ROW) n = sqlite3_column_int64(stmt_, 0);
    sqlite3_reset(stmt_);
    return n;
  }

 private:
  std::string sql_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Runs `fn` R times (each returns jobs/s or NAN on failure); the median of the good runs.
struct Measured {
  bool attempted = false;
  double rate = NAN;
  std::vector<double> runs;
  std::string note;
};

Measured repeat(int times, const std::function<double()>& fn) {
  Measured m;
  m.attempted = true;
  for (int i = 0; i < times; ++i) {
    double r = fn();
    if (!std::isnan(r)) m.runs.push_back(r);
  }
  if (!m.runs.empty()) m.rate = median(m.runs);
  return m;
}

// ---------------------------------------------------------------- preforkd side

enum class Kind { exec, persistent, in_process };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::exec: return "exec /bin/true";
    case Kind::persistent: return "persistent (C no-op)";
    case Kind::in_process: return "in_process";
  }
  return "?";
}

std::string write_config(const TempDir& dir, Kind kind, int workers, int prefetch = 1,
                         bool pinned = false) {
  std::string handler;
  switch (kind) {
    case Kind::exec: handler = "{ exec: [/bin/true] }"; break;
    case Kind::persistent: handler = std::string("{ persistent: [") + BENCH_PERSISTENT + "] }"; break;
    case Kind::in_process: handler = "in_process"; break;
  }
  std::string path = dir / "preforkd.yaml";
  write_file(path, "log: { level: warn }\n"
                   "sources: { local: { type: sqlite, path: jobs.db, prefetch: " +
                       std::to_string(prefetch) + " } }\n"
                   "pools:\n"
                   "  noop:\n"
                   "    source: local\n"
                   "    queues: [bench]\n"
                   "    workers: " + std::to_string(workers) + "\n" +
                   (pinned ? "    cpu_affinity: auto\n" : "") +
                   "    handler: " + handler + "\n");
  return path;
}

std::unique_ptr<preforkd::JobSource> open_source(const std::string& config_path) {
  preforkd::Config config = preforkd::load_config(config_path, false);
  return preforkd::open_job_source(config.sources.at("local"));
}

std::vector<preforkd::NewJob> payloads(int n) {
  std::vector<preforkd::NewJob> jobs(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    jobs[static_cast<size_t>(i)].queue = "bench";
    jobs[static_cast<size_t>(i)].payload = "{\"n\":" + std::to_string(i) + "}";
  }
  return jobs;
}

std::vector<std::string> daemon_argv(Kind kind, const std::string& config) {
  return {kind == Kind::in_process ? BENCH_INPROC : BENCH_PREFORKD, "-c", config};
}

const char* done_sql = "SELECT count(*) FROM preforkd_jobs WHERE state = 'done'";

double drain_once(Kind kind, int prefetch, bool pinned, int n, const Options& options,
                  std::string* problem) {
  TempDir dir("drain", options.keep);
  std::string config = write_config(dir, kind, 2, prefetch, pinned);
  {
    auto source = open_source(config);
    auto jobs = payloads(n);
    source->enqueue_batch(jobs);
  }
  std::string log = dir / "daemon.log";
  Counter done(dir / "jobs.db", done_sql);
  long long t0 = now_ns();
  pid_t daemon = spawn(daemon_argv(kind, config), {}, "", log, log);
  long long got = poll_until([&] { return done.count(); }, [n](long long c) { return c >= n; }, 900, 10, {daemon});
  double elapsed = seconds_since(t0);
  stop_process(daemon, SIGQUIT, 20);
  Counter bad(dir / "jobs.db", "SELECT count(*) FROM preforkd_jobs WHERE state IN ('dead', 'retry')");
  long long failed = bad.count();
  double rate = NAN;
  if (got >= n && failed == 0) rate = n / elapsed;
  else *problem = "drain " + std::string(kind_name(kind)) + ": " + std::to_string(got) + "/" +
                  std::to_string(n) + " done, " + std::to_string(failed) + " failed; log:\n" + tail_of(log);
  return rate;
}

double enqueue_ctl_once(int n, const Options& options) {
  TempDir dir("ctl", options.keep);
  std::string config = write_config(dir, Kind::exec, 2);
  open_source(config);  // the schema exists beforehand, as in production
  std::string input;
  for (int i = 0; i < n; ++i) input += "{\"n\":" + std::to_string(i) + "}\n";
  write_file(dir / "payloads", input);
  long long t0 = now_ns();
  pid_t pid = spawn({BENCH_PREFORKCTL, "-c", config, "enqueue", "bench", "--batch"}, {},
                    dir / "payloads", "", dir / "ctl.err");
  bool ok = exited_ok(pid, 120);
  double elapsed = seconds_since(t0);
  Counter queued(dir / "jobs.db", "SELECT count(*) FROM preforkd_jobs");
  long long got = queued.count();
  double rate = ok && got == n ? n / elapsed : NAN;
  if (std::isnan(rate)) std::fprintf(stderr, "bench_jobs: preforkctl enqueue failed:\n%s\n", tail_of(dir / "ctl.err").c_str());
  return rate;
}

double enqueue_lib_once(int n, bool batch, const Options& options) {
  TempDir dir("lib", options.keep);
  std::string config = write_config(dir, Kind::exec, 2);
  auto source = open_source(config);
  auto jobs = payloads(n);
  long long t0 = now_ns();
  if (batch) {
    source->enqueue_batch(jobs);
  } else {
    for (const auto& job : jobs) source->enqueue(job);
  }
  return n / seconds_since(t0);
}

struct Latency {
  std::vector<double> ms;
  std::string problem;
};

Latency latency_run(const Options& options) {
  Latency result;
  TempDir dir("latency", options.keep);
  std::string config = write_config(dir, Kind::in_process, 2);
  auto source = open_source(config);
  std::string log = dir / "daemon.log";
  std::string lat_file = dir / "latency.txt";
  pid_t daemon = spawn(daemon_argv(Kind::in_process, config), {"BENCH_LATENCY_FILE=" + lat_file}, "",
                       log, log);
  Counter done(dir / "jobs.db", done_sql);
  LatencySamples samples = measure_latency(*source, daemon, lat_file, log, options.latency_jobs,
                                           options.latency_gap_ms, [&] { return done.count(); });
  result.ms = samples.ms;
  if (!samples.problems.empty()) result.problem = samples.problems.front();  // what went wrong first
  return result;
}

// ---------------------------------------------------------------- peers

const std::string schwartz_script = std::string(BENCH_SCHWARTZ_DIR) + "/theschwartz.pl";

// TheSchwartz insert() x n: seconds measured inside perl (interpreter start excluded).
double schwartz_enqueue_once(int n, const Options& options) {
  TempDir dir("tsw-enq", options.keep);
  std::string db = dir / "schwartz.db";
  double rate = NAN;
  if (run_quiet({"perl", schwartz_script, "init", db}, {}, "", "", dir / "err", 60) &&
      run_quiet({"perl", schwartz_script, "enqueue", db, std::to_string(n)}, {}, "", dir / "out", dir / "err", 300)) {
    std::ifstream in(dir / "out");
    double seconds = 0;
    if (in >> seconds && seconds > 0) rate = n / seconds;
  }
  if (std::isnan(rate)) std::fprintf(stderr, "bench_jobs: TheSchwartz enqueue failed:\n%s\n", tail_of(dir / "err").c_str());
  return rate;
}

// 2 perl workers from their start until the job table is empty.
double schwartz_drain_once(int n, const Options& options, std::string* problem) {
  TempDir dir("tsw-drain", options.keep);
  std::string db = dir / "schwartz.db";
  if (!run_quiet({"perl", schwartz_script, "init", db}, {}, "", "", dir / "err", 60) ||
      !run_quiet({"perl", schwartz_script, "enqueue", db, std::to_string(n)}, {}, "", "", dir / "err", 300)) {
    *problem = "TheSchwartz setup failed:\n" + tail_of(dir / "err");
    return NAN;
  }
  Counter left(db, "SELECT count(*) FROM job");
  long long t0 = now_ns();
  pid_t a = spawn({"perl", schwartz_script, "worker", db, "240"}, {}, "", "", dir / "err");
  pid_t b = spawn({"perl", schwartz_script, "worker", db, "240"}, {}, "", "", dir / "err");
  long long remaining = poll_until([&] { return left.count(); }, [](long long c) { return c == 0; }, 250, 10);
  double elapsed = seconds_since(t0);
  for (pid_t pid : {a, b})
    if (!wait_for(pid, 15, nullptr)) stop_process(pid, SIGTERM, 5);
  double rate = NAN;
  if (remaining == 0) rate = (n + 1) / elapsed;  // + the warm-up job the enqueue inserted
  else *problem = "TheSchwartz drain: " + std::to_string(remaining) + " jobs left:\n" + tail_of(dir / "err");
  return rate;
}

// The claim/complete statements of src/sources/sqlite/ (copied: the raw loop is what
// the source would reach with nothing around them). The schema is the source's own.
constexpr const char* raw_claim =
    "UPDATE preforkd_jobs SET state = 'running', attempts = attempts + 1, locked_by = ?3, "
    "lease_until = ?4, started_at = ?2 WHERE id = (SELECT id FROM preforkd_jobs "
    "WHERE queue = ?1 AND state IN ('queued', 'retry') AND run_at <= ?2 "
    "ORDER BY priority DESC, run_at, id LIMIT 1) "
    "RETURNING id, payload, attempts, max_attempts, priority";
constexpr const char* raw_complete =
    "UPDATE preforkd_jobs SET state = 'done', locked_by = NULL, lease_until = NULL, "
    "finished_at = ?3, last_error = NULL WHERE id = ?1 AND locked_by = ?2 AND state = 'running'";

long long wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

// Diagnosis (--raw-busy-us N): a busy handler that retries every N microseconds up to 10 s,
// instead of SQLite's default one, which sleeps 1, 2, 5, 10, 15, 20, 25... ms.
int raw_busy_us = 0;
// Diagnosis (--raw-fused): one transaction per job, "complete the previous job + claim the
// next", instead of two; what a complete_and_fetch() in the source could reach.
bool raw_fused = false;
int short_busy(void*, int tries) {
  if (static_cast<long long>(tries) * raw_busy_us >= 10'000'000LL) return 0;
  ::usleep(static_cast<useconds_t>(raw_busy_us));
  return 1;
}

sqlite3* raw_open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK)
    ::_exit(3);
  sqlite3_busy_timeout(db, 10000);  // the source's default busy_timeout
  if (raw_busy_us > 0) sqlite3_busy_handler(db, short_busy, nullptr);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  sqlite3_exec(db, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  return db;
}

bool raw_step_ok(sqlite3* db, sqlite3_stmt* s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "raw: %s\n", sqlite3_errmsg(db));
    return false;
  }
  return true;
}

// One raw worker process: claim+complete, two BEGIN IMMEDIATE transactions per job.
int raw_worker(const std::string& path) {
  // The limit of SQLite itself: keep glibc from giving the page cache's memory back to
  // the kernel after every transaction (see README: that is what slows preforkd down),
  // whatever malloc state this process inherited from the driver.
  ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
  sqlite3* db = raw_open(path);
  sqlite3_stmt *begin, *commit, *claim, *complete;
  sqlite3_prepare_v3(db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &begin, nullptr);
  sqlite3_prepare_v3(db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &commit, nullptr);
  sqlite3_prepare_v3(db, raw_claim, -1, SQLITE_PREPARE_PERSISTENT, &claim, nullptr);
  sqlite3_prepare_v3(db, raw_complete, -1, SQLITE_PREPARE_PERSISTENT, &complete, nullptr);
  std::string me = "raw:" + std::to_string(::getpid());
  long long previous = -1;  // --raw-fused: completed in the next claim's transaction
  for (;;) {
    long long now = wall_ms();
    if (!raw_step_ok(db, begin)) return 4;
    if (raw_fused && previous >= 0) {
      sqlite3_bind_int64(complete, 1, previous);
      sqlite3_bind_text(complete, 2, me.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int64(complete, 3, now);
      if (!raw_step_ok(db, complete)) return 10;
    }
    sqlite3_bind_text(claim, 1, "bench", -1, SQLITE_STATIC);
    sqlite3_bind_int64(claim, 2, now);
    sqlite3_bind_text(claim, 3, me.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(claim, 4, now + 30000);
    int rc = sqlite3_step(claim);
    long long id = rc == SQLITE_ROW ? sqlite3_column_int64(claim, 0) : -1;
    if (rc == SQLITE_ROW) rc = sqlite3_step(claim);
    sqlite3_reset(claim);
    if (rc != SQLITE_DONE) return 5;
    if (!raw_step_ok(db, commit)) return 6;
    if (id < 0) break;
    if (raw_fused) {
      previous = id;
      continue;
    }
    if (!raw_step_ok(db, begin)) return 7;
    sqlite3_bind_int64(complete, 1, id);
    sqlite3_bind_text(complete, 2, me.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(complete, 3, wall_ms());
    if (!raw_step_ok(db, complete)) return 8;
    if (!raw_step_ok(db, commit)) return 9;
  }
  for (auto* s : {begin, commit, claim, complete}) sqlite3_finalize(s);
  sqlite3_close(db);
  return 0;
}

double raw_sqlite_once(int n, const Options& options) {
  TempDir dir("raw", options.keep);
  std::string path = dir / "jobs.db";
  // The table and indexes exactly as preforkd makes them: the source creates them on
  // first open (write_config points it at DIR/jobs.db).
  open_source(write_config(dir, Kind::exec, 1)).reset();
  {
    sqlite3* db = raw_open(path);
    sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    sqlite3_stmt* insert = nullptr;
    sqlite3_prepare_v2(db,
                       "INSERT INTO preforkd_jobs (queue, payload, priority, run_at, max_attempts, "
                       "unique_key, created_at) VALUES ('bench', ?1, 0, ?2, 0, NULL, ?2)",
                       -1, &insert, nullptr);
    long long now = wall_ms();
    for (int i = 0; i < n; ++i) {
      std::string payload = "{\"n\":" + std::to_string(i) + "}";
      sqlite3_bind_text(insert, 1, payload.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(insert, 2, now);
      sqlite3_step(insert);
      sqlite3_reset(insert);
    }
    sqlite3_finalize(insert);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  long long t0 = now_ns();
  std::vector<pid_t> workers;
  for (int w = 0; w < 2; ++w) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::_exit(raw_worker(path));
    }
    live_children.push_back(pid);
    workers.push_back(pid);
  }
  bool ok = true;
  for (pid_t pid : workers)
    if (!exited_ok(pid, 120)) ok = false;
  double elapsed = seconds_since(t0);
  Counter done(path, done_sql);
  long long got = done.count();
  if (!ok || got != n) {
    std::fprintf(stderr, "bench_jobs: raw SQLite run failed (%lld/%d done)\n", got, n);
    return NAN;
  }
  return n / elapsed;
}

// 2 processes, each fork + execve(/bin/true) + waitpid per "job" (or posix_spawn, which
// glibc does with clone(CLONE_VM|CLONE_VFORK): no page-table copy of the parent).
double fork_exec_once(int n, bool use_spawn) {
  long long t0 = now_ns();
  std::vector<pid_t> workers;
  for (int w = 0; w < 2; ++w) {
    int share = n / 2 + (w == 0 ? n % 2 : 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
      for (int i = 0; i < share; ++i) {
        pid_t c = -1;
        if (use_spawn) {
          if (::posix_spawn(&c, "/bin/true", nullptr, nullptr, argv, environ) != 0) ::_exit(1);
        } else if ((c = ::fork()) == 0) {
          ::execve("/bin/true", argv, environ);
          ::_exit(127);
        }
        int status = 0;
        if (c < 0 || ::waitpid(c, &status, 0) != c || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
          ::_exit(1);
      }
      ::_exit(0);
    }
    live_children.push_back(pid);
    workers.push_back(pid);
  }
  bool ok = true;
  for (pid_t pid : workers)
    if (!exited_ok(pid, 900)) ok = false;
  return ok ? n / seconds_since(t0) : NAN;
}

// ---------------------------------------------------------------- report

std::string fmt_rate(double r) {
  if (std::isnan(r)) return "failed";
  char b[32];
  std::snprintf(b, sizeof b, "%.0f", r);
  return b;
}

std::string shown(const Measured& m) { return m.attempted ? fmt_rate(m.rate) : "skipped"; }

std::string fmt_runs(const Measured& m) {
  if (m.runs.size() <= 1) return "";
  std::string s = "  (runs:";
  for (double r : m.runs) s += " " + fmt_rate(r);
  return s + ")";
}

}  // namespace

int main(int argc, char** argv) {
  set_program("bench_jobs", "benchjobs");
  Options options;
  for (Args args(argc, argv); args.next();) {
    const std::string& a = args.arg();
    if (a == "--exec-jobs") options.exec_jobs = args.number();
    else if (a == "--raw-busy-us") raw_busy_us = args.number();
    else if (a == "--raw-fused") raw_fused = true;
    else if (a == "--schwartz-jobs") options.schwartz_jobs = args.number();
    else if (a == "--prefetch") options.prefetch = std::max(1, args.number());
    else if (a == "--quick") {  // the common --quick's counts, and this driver's own
      options.jobs = 2000;
      options.exec_jobs = 500;
      options.schwartz_jobs = 300;
      options.latency_jobs = 100;
    } else if (!take_common_option(args, options)) {
      std::fprintf(stderr,
                   "usage: bench_jobs [--jobs N] [--exec-jobs N] [--schwartz-jobs N] [--latency-jobs N] "
                   "[--latency-gap-ms MS] [--repeat R] [--prefetch P] [--quick] [--keep]\n"
                   "       [--only exec,persistent,in_process,schwartz,raw,forkexec,spawn,enqueue,latency]\n");
      return 2;
    }
  }
  if (options.exec_jobs <= 0) options.exec_jobs = options.jobs;
  if (options.jobs < 1 || options.schwartz_jobs < 1 || options.latency_jobs < 1) die("counts must be >= 1");
  install_signal_handlers();

  const int n = options.jobs;
  std::printf("preforkd jobs bench: %d jobs per drain (exec handler and fork+exec: %d), 2 workers, "
              "TheSchwartz %d jobs, %d latency samples, median of %d run(s)\n",
              n, options.exec_jobs, options.schwartz_jobs, options.latency_jobs, options.repeat);
  std::printf("machine: %u cpu(s), SQLite %s, temp dirs under /tmp (%s)\n\n",
              std::thread::hardware_concurrency(), sqlite3_libversion(),
              fs::path("/tmp").string().c_str());
  std::fflush(stdout);

  std::vector<std::string> problems;
  auto note = [&](const std::string& p) {
    if (!p.empty()) problems.push_back(p);
  };

  // 1. drain: exec at prefetch 1 (fork-bound); persistent and in_process at 1 and P.
  struct Drain {
    Kind kind;
    int prefetch;
    bool pinned;
    std::string label;
    Measured result;
  };
  std::vector<Drain> drains;
  const char* part_names[] = {"exec", "persistent", "in_process"};
  for (Kind kind : {Kind::exec, Kind::persistent, Kind::in_process}) {
    std::vector<int> prefetches{1};
    if (kind != Kind::exec && options.prefetch > 1) prefetches.push_back(options.prefetch);
    for (int prefetch : prefetches)
      drains.push_back({kind, prefetch, false,
                        std::string(kind_name(kind)) + (kind == Kind::exec ? "" : ", prefetch " + std::to_string(prefetch)),
                        {}});
    // cpu_affinity: auto puts each worker and its persistent handler on one CPU.
    if (kind == Kind::persistent)
      drains.push_back({kind, prefetches.back(), true,
                        std::string(kind_name(kind)) + ", prefetch " + std::to_string(prefetches.back()) +
                            ", cpu_affinity auto",
                        {}});
  }
  for (auto& d : drains) {
    if (!options.wants(part_names[static_cast<int>(d.kind)])) continue;
    std::string problem;
    d.result = repeat(options.repeat, [&] {
      double r = drain_once(d.kind, d.prefetch, d.pinned, d.kind == Kind::exec ? options.exec_jobs : n,
                            options, &problem);
      note(problem);
      problem.clear();
      return r;
    });
    std::printf("  drain %-34s %10s jobs/s%s\n", d.label.c_str(), shown(d.result).c_str(),
                fmt_runs(d.result).c_str());
    std::fflush(stdout);
  }
  auto drain_rate = [&](Kind kind, int prefetch, bool pinned = false) {
    for (const auto& d : drains)
      if (d.kind == kind && d.prefetch == prefetch && d.pinned == pinned) return d.result.rate;
    return static_cast<double>(NAN);
  };
  Measured tsw_drain, raw, forkexec, spawnexec;
  if (options.wants("schwartz")) tsw_drain = repeat(options.repeat, [&] {
    std::string problem;
    double r = schwartz_drain_once(options.schwartz_jobs, options, &problem);
    note(problem);
    return r;
  });
  std::printf("  drain %-22s %10s jobs/s%s\n", "TheSchwartz (perl)", shown(tsw_drain).c_str(),
              fmt_runs(tsw_drain).c_str());
  if (options.wants("raw")) raw = repeat(options.repeat, [&] { return raw_sqlite_once(n, options); });
  std::printf("  %-28s %10s jobs/s%s\n", "raw SQLite claim+complete", shown(raw).c_str(),
              fmt_runs(raw).c_str());
  if (options.wants("forkexec")) forkexec = repeat(options.repeat, [&] { return fork_exec_once(options.exec_jobs, false); });
  std::printf("  %-28s %10s jobs/s%s\n", "plain fork+exec /bin/true", shown(forkexec).c_str(),
              fmt_runs(forkexec).c_str());
  if (options.wants("spawn")) spawnexec = repeat(options.repeat, [&] { return fork_exec_once(options.exec_jobs, true); });
  std::printf("  %-28s %10s jobs/s%s\n", "posix_spawn /bin/true", shown(spawnexec).c_str(),
              fmt_runs(spawnexec).c_str());
  std::fflush(stdout);

  // 2. enqueue
  Measured ctl, lib_one, lib_batch, tsw_enq;
  if (options.wants("enqueue")) {
    ctl = repeat(options.repeat, [&] { return enqueue_ctl_once(n, options); });
    lib_one = repeat(options.repeat, [&] { return enqueue_lib_once(n, false, options); });
    lib_batch = repeat(options.repeat, [&] { return enqueue_lib_once(n, true, options); });
    tsw_enq = repeat(options.repeat, [&] { return schwartz_enqueue_once(options.schwartz_jobs, options); });
  }
  std::printf("  enqueue %-20s %10s jobs/s%s\n", "preforkctl --batch", shown(ctl).c_str(), fmt_runs(ctl).c_str());
  std::printf("  enqueue %-20s %10s jobs/s%s\n", "library enqueue()", shown(lib_one).c_str(), fmt_runs(lib_one).c_str());
  std::printf("  enqueue %-20s %10s jobs/s%s\n", "library enqueue_batch", shown(lib_batch).c_str(), fmt_runs(lib_batch).c_str());
  std::printf("  enqueue %-20s %10s jobs/s%s\n", "TheSchwartz insert()", shown(tsw_enq).c_str(), fmt_runs(tsw_enq).c_str());
  std::fflush(stdout);

  // 3. latency
  Latency lat;
  if (options.wants("latency")) lat = latency_run(options);
  note(lat.problem);
  double p50 = percentile(lat.ms, 50), p99 = percentile(lat.ms, 99);
  double pmax = lat.ms.empty() ? NAN : *std::max_element(lat.ms.begin(), lat.ms.end());
  std::printf("  enqueue-to-start (in_process, idle, %zu samples, %d ms apart): p50 %.2f ms  p99 %.2f ms  max %.2f ms\n\n",
              lat.ms.size(), options.latency_gap_ms, p50, p99, pmax);

  // Side by side.
  std::printf("%-60s %12s\n", "drain, 2 workers, no-op jobs", "jobs/s");
  std::printf("%-60s %12s\n", std::string(60, '-').c_str(), "------------");
  for (const auto& d : drains)
    std::printf("preforkd %-51s %12s\n", d.label.c_str(), shown(d.result).c_str());
  std::printf("%-60s %12s\n", "TheSchwartz 1.12 + DBD::SQLite", shown(tsw_drain).c_str());
  std::printf("%-60s %12s\n", "raw SQLite claim+complete (limit)", shown(raw).c_str());
  std::printf("%-60s %12s\n", "plain fork+exec /bin/true", shown(forkexec).c_str());
  std::printf("%-60s %12s\n\n", "posix_spawn /bin/true (reference)", shown(spawnexec).c_str());
  std::printf("%-34s %12s\n", "enqueue", "jobs/s");
  std::printf("%-34s %12s\n", "----------------------------------", "------------");
  std::printf("%-34s %12s\n", "preforkctl enqueue --batch", shown(ctl).c_str());
  std::printf("%-34s %12s\n", "library enqueue() one by one", shown(lib_one).c_str());
  std::printf("%-34s %12s\n", "library enqueue_batch()", shown(lib_batch).c_str());
  std::printf("%-34s %12s\n\n", "TheSchwartz insert() one by one", shown(tsw_enq).c_str());

  // Targets.
  struct Row {
    std::string what;
    double value;
    std::string shown;
    std::string target;
    bool met;
  };
  std::vector<Row> rows;
  auto ratio_row = [&](const std::string& what, double a, double b, double target) {
    double r = (std::isnan(a) || std::isnan(b) || b <= 0) ? NAN : a / b;
    char shown[32], tgt[32];
    std::snprintf(shown, sizeof shown, std::isnan(r) ? "n/a" : (r >= 10 ? "%.1fx" : "%.2fx"), r);
    std::snprintf(tgt, sizeof tgt, target >= 1 ? ">= %.0fx" : ">= %.2fx", target);
    rows.push_back({what, r, shown, tgt, !std::isnan(r) && r >= target});
  };
  for (Kind kind : {Kind::in_process, Kind::persistent}) {
    std::vector<int> prefetches{1};
    if (options.prefetch > 1) prefetches.push_back(options.prefetch);
    for (int prefetch : prefetches) {
      std::string what = std::string(kind == Kind::in_process ? "in_process" : "persistent") +
                         " p" + std::to_string(prefetch);
      ratio_row(what + " / TheSchwartz", drain_rate(kind, prefetch), tsw_drain.rate, 25);
      ratio_row(what + " / raw SQLite limit", drain_rate(kind, prefetch), raw.rate, 0.5);
    }
  }
  {
    int p = std::max(1, options.prefetch);
    std::string what = "persistent p" + std::to_string(p) + " pinned";
    ratio_row(what + " / TheSchwartz", drain_rate(Kind::persistent, p, true), tsw_drain.rate, 25);
  }
  ratio_row("exec / plain fork+exec", drain_rate(Kind::exec, 1), forkexec.rate, 0.5);
  auto ms_row = [&](const std::string& what, double v, double limit) {
    char shown[32], tgt[32];
    std::snprintf(shown, sizeof shown, "%.2f ms", v);
    std::snprintf(tgt, sizeof tgt, "< %.0f ms", limit);
    rows.push_back({what, v, shown, tgt, !std::isnan(v) && v < limit});
  };
  ms_row("enqueue-to-start p50", p50, 5);
  ms_row("enqueue-to-start p99", p99, 20);
  std::printf("%-34s %12s %10s  %s\n", "target", "measured", "wanted", "");
  std::printf("%-34s %12s %10s  %s\n", "----------------------------------", "------------", "----------", "----");
  for (const auto& row : rows)
    std::printf("%-34s %12s %10s  %s\n", row.what.c_str(), row.shown.c_str(), row.target.c_str(),
                std::isnan(row.value) ? "not measured" : row.met ? "met" : "MISSED");
  for (const auto& p : problems) std::fprintf(stderr, "\nbench_jobs: problem: %s\n", p.c_str());
  kill_leftovers();
  return problems.empty() ? 0 : 1;
}
