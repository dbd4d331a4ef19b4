// bench_postgres: preforkd's PostgreSQL source against graphile-worker and a raw libpq
// SKIP LOCKED loop, in one run, on one throwaway PostgreSQL server that this program
// starts (initdb into a temp dir, 127.0.0.1 on a free port, no Unix socket, run as the
// unprivileged postgres user when started as root) and stops. Every process it starts
// is tracked by pid, has a deadline, and is stopped by pid (and dies with it:
// PR_SET_PDEATHSIG).
//
//   bench_postgres [--jobs N] [--latency-jobs N] [--latency-gap-ms MS] [--repeat R]
//                  [--only LIST] [--keep] [--quick] [--statements]
//
// Sections (see bench/postgres/README.md); each drain gets a new database "bench":
//   in_process, persistent
//             N pre-enqueued no-op jobs (preforkctl enqueue --batch), 2 workers, from the
//             daemon's start until SELECT count(*) ... WHERE state = 'done' reaches N
//             (every 20 ms, one connection)
//   graphile  N jobs added with graphile_worker.add_jobs; one node process, run() with
//             concurrency 2 (and 10); from run() (and from the process start) until no
//             row is left in graphile_worker._private_jobs (completed jobs are deleted)
//   raw       the raw limit: 2 processes, each one connection running a prepared
//             SKIP LOCKED claim (UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED))
//             and a prepared complete (UPDATE ... SET state = 'done') until the claim
//             finds nothing; minimal table (min), preforkd's own table and SQL (same),
//             and the same SQL with each complete merged into the next claim (merged,
//             a what-if: the source does not do this)
//   latency   enqueue-to-start on an idle in_process pool (library enqueue(), 1 at a time)
//
// --repeat R runs R rounds of every scenario in turn (medians shown); --statements loads
// pg_stat_statements and prints each drain's top statements per job.
// Internal: bench_postgres --raw-worker CONNINFO min|same|merged  (one raw loop; prints its count)
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
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
#include "sources/postgres/pg_queries.hpp"  // the source's own SQL, for the raw_same loop

namespace {

using namespace bench;
namespace fs = std::filesystem;

struct Options : CommonOptions {
  bool statements = false;  // load pg_stat_statements and print each drain's top statements
};

// ---------------------------------------------------------------- postgres client

class Pg {
 public:
  explicit Pg(const std::string& conninfo) {
    c_ = PQconnectdb(conninfo.c_str());
    if (PQstatus(c_) != CONNECTION_OK) {
      std::string e = PQerrorMessage(c_);
      PQfinish(c_);
      c_ = nullptr;
      throw std::runtime_error(e);
    }
    PQsetNoticeProcessor(c_, [](void*, const char*) {}, nullptr);  // "database does not exist, skipping"
  }
  ~Pg() {
    if (c_) PQfinish(c_);
  }
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  // One statement; the first value as text ("" for none). Dies on an error.
  std::string cmd(const std::string& sql) {
    ++statements;
    PGresult* r = PQexec(c_, sql.c_str());
    auto st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      std::string e = PQresultErrorMessage(r);
      PQclear(r);
      die("postgres: " + sql.substr(0, 200) + ": " + e);
    }
    std::string out = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return out;
  }
  // As cmd, but an error is returned as "ERR:..." (the table may not exist yet).
  std::string try_cmd(const std::string& sql) {
    ++statements;
    PGresult* r = PQexec(c_, sql.c_str());
    auto st = PQresultStatus(r);
    std::string out;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) out = std::string("ERR:") + PQresultErrorMessage(r);
    else out = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return out;
  }
  long long num(const std::string& sql) {
    std::string s = cmd(sql);
    return s.empty() ? 0 : std::atoll(s.c_str());
  }
  // Polls every `every_ms` until pred(value) or the deadline (or `watched` exits).
  long long wait_until(const std::string& sql, const std::function<bool(long long)>& pred, double deadline_s,
                       int every_ms, const std::vector<pid_t>& watched = {}) {
    return poll_until([&] { return num(sql); }, pred, deadline_s, every_ms, watched);
  }
  long long statements = 0;  // sent on this connection (subtracted from the transaction counts)

 private:
  PGconn* c_ = nullptr;
};

// ---------------------------------------------------------------- the server

// The newest /usr/lib/postgresql/N/bin with a postgres binary ($BENCH_PG_BIN overrides).
std::string pg_bin_dir() {
  if (const char* dir = std::getenv("BENCH_PG_BIN")) return dir;
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int version = std::atoi(entry.path().filename().c_str());
    if (version > best_version && fs::exists(entry.path() / "bin" / "postgres")) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  if (best.empty()) die("no /usr/lib/postgresql/*/bin/postgres: apt-get install -y postgresql");
  return best;
}

struct Server {
  pid_t pid = -1;
  int port = 0;
  std::string dir, bin, version;
  bool statements = false;
  SpawnAs as;
  std::string conninfo(const std::string& db) const {
    return "host=127.0.0.1 port=" + std::to_string(port) + " dbname=" + db + " user=postgres connect_timeout=5";
  }
  std::string url(const std::string& db) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/" + db;
  }
};

// The same settings for every side: no fsync, no synchronous commit, no full-page
// writes (a throwaway server: the disk is not what is measured); everything else is
// PostgreSQL's default (autovacuum on).
const std::vector<std::string> server_settings = {"fsync=off", "synchronous_commit=off", "full_page_writes=off",
                                                  "max_connections=50", "shared_buffers=128MB",
                                                  "log_min_messages=warning"};

Server start_postgres(bool statements) {
  Server server;
  server.statements = statements;
  server.bin = pg_bin_dir();
  server.dir = make_temp_dir("server");
  if (::geteuid() == 0) {
    passwd* pw = ::getpwnam("postgres");
    if (!pw) pw = ::getpwnam("nobody");
    if (!pw) die("running as root and there is neither a 'postgres' nor a 'nobody' user");
    server.as = {true, pw->pw_uid, pw->pw_gid, SIGQUIT};
    if (::chown(server.dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) die("chown " + server.dir);
  } else {
    server.as.death_signal = SIGQUIT;
  }
  std::string data = server.dir + "/data", log = server.dir + "/postgres.log";
  if (!run_quiet({server.bin + "/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                  "--no-instructions"},
                 {}, "", server.dir + "/initdb.log", server.dir + "/initdb.log", 180, server.as))
    die("initdb failed:\n" + tail_of(server.dir + "/initdb.log"));
  server.version = read_file(data + "/PG_VERSION");
  while (!server.version.empty() && server.version.back() == '\n') server.version.pop_back();
  for (int attempt = 0; attempt < 5; ++attempt) {
    server.port = free_port();
    // -k '': no Unix socket; -h 127.0.0.1: TCP on loopback only.
    std::vector<std::string> argv = {server.bin + "/postgres", "-D", data, "-k", "", "-h", "127.0.0.1",
                                     "-p", std::to_string(server.port)};
    for (const auto& s : server_settings) argv.insert(argv.end(), {"-c", s});
    if (server.statements)
      argv.insert(argv.end(), {"-c", "shared_preload_libraries=pg_stat_statements", "-c", "pg_stat_statements.track=all"});
    server.pid = spawn(argv, {}, "", log, log, "", server.as);
    auto answers = [&] { return PQping(server.conninfo("postgres").c_str()) == PQPING_OK; };
    if (wait_until_serving(server.pid, 3000, 20, answers)) return server;
  }
  die("postgres did not start; log:\n" + tail_of(log));
}

// A new, empty database "bench" for the next scenario (its statistics start at zero),
// then a checkpoint so that no scenario pays for the previous one's dirty pages.
void reset(Pg& admin) {
  admin.cmd("DROP DATABASE IF EXISTS bench WITH (FORCE)");
  admin.cmd("CREATE DATABASE bench");
  admin.cmd("CHECKPOINT");
}

// Committed transactions and rows written in database "bench" (pg_stat_database; a
// backend's counts arrive when it flushes them: at least once a second while it works,
// and when it exits).
struct DbStats {
  long long xacts = 0, rows = 0;
};

DbStats db_stats(const Server& server) {
  sleep_ms(200);  // the backends that just exited have flushed their counts by now
  Pg admin(server.conninfo("postgres"));
  admin.cmd("SELECT pg_stat_clear_snapshot()");
  std::istringstream in(admin.cmd(
      "SELECT xact_commit || ' ' || (tup_inserted + tup_updated + tup_deleted) FROM pg_stat_database "
      "WHERE datname = 'bench'"));
  DbStats s;
  in >> s.xacts >> s.rows;
  return s;
}

// ---------------------------------------------------------------- results

// One drain run: jobs/s (NAN: failed), a second figure where it has one, and the work.
struct Run {
  double rate = NAN;
  double rate2 = NAN;          // graphile-worker: from the node process's start
  double client_cpu_us = NAN;  // per job, the client processes (whole trees)
  double server_cpu_s = NAN;   // the postgres server (postmaster tree) during the window
  double xacts_per_job = NAN, rows_per_job = NAN;
  std::vector<std::string> statements;  // --statements: the top statements, per job
  int n = 0;
  double elapsed = 0;
};

using Measured = ScenarioRuns<Run>;  // representative: for the work figures

std::vector<std::string> problems;

// The figures every drain takes the same way: server CPU over the measured window,
// transactions and rows per job from pg_stat_database (the poller's own statements
// left out).
struct Window {
  const Server& server;
  DbStats before;
  double server_cpu0 = 0;
  explicit Window(const Server& s) : server(s), before(db_stats(s)) {
    if (s.statements) Pg(s.conninfo("postgres")).cmd("SELECT pg_stat_statements_reset()");
    server_cpu0 = tree_cpu_seconds({s.pid});
  }
  void end(Run& run) { run.server_cpu_s = tree_cpu_seconds({server.pid}) - server_cpu0; }
  void totals(Run& run, long long poller_statements) {
    DbStats after = db_stats(server);
    if (server.statements) {
      // Everything the clients ran in database bench during the window (the bench's
      // own polling included: it is the count(*) line), per job.
      Pg admin(server.conninfo("postgres"));
      std::string rows = admin.cmd(
          "SELECT string_agg(format('%8s calls/job %9s us/call %9s us/job  %s', round(calls::numeric / " +
          std::to_string(run.n) + ", 3), round((total_exec_time * 1000 / calls)::numeric, 1), "
          "round((total_exec_time * 1000 / " + std::to_string(run.n) + ")::numeric, 1), "
          "left(regexp_replace(query, '\\s+', ' ', 'g'), 110)), E'\\n' ORDER BY total_exec_time DESC) "
          "FROM (SELECT * FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench') "
          "ORDER BY total_exec_time DESC LIMIT 8) s");
      std::istringstream in(rows);
      for (std::string line; std::getline(in, line);) run.statements.push_back(line);
    }
    // + 2: the first db_stats connection's own two statements.
    run.xacts_per_job = static_cast<double>(after.xacts - before.xacts - poller_statements - 2) / run.n;
    run.rows_per_job = static_cast<double>(after.rows - before.rows) / run.n;
  }
};

// ---------------------------------------------------------------- preforkd

enum class Kind { in_process, persistent };
const char* kind_name(Kind k) { return k == Kind::in_process ? "in_process" : "persistent (C no-op)"; }

std::string write_config(const TempDir& dir, const Server& server, Kind kind, int prefetch) {
  std::string handler = kind == Kind::in_process ? "in_process" : std::string("{ persistent: [") + BENCH_PERSISTENT + "] }";
  std::string path = dir / "preforkd.yaml";
  write_file(path, "log: { level: warn }\n"
                   "sources:\n"
                   "  shared: { type: postgres, url: \"" + server.conninfo("bench") + "\", prefetch: " +
                       std::to_string(prefetch) + " }\n"
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

const char* const done_count = "SELECT count(*) FROM preforkd_jobs WHERE state = 'done'";
// The drains' poll: is any job still queued or running? Each half walks one of the
// source's own partial indexes (the claim order, the lease index) and stops at the
// first live row, so a poll costs tens of microseconds however many jobs are done
// (a count(*) of done jobs costs 1-3 ms at 20,000). 0 = nothing queued or running: each
// job is done or dead, which the count afterwards tells apart.
const char* const preforkd_left =
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM preforkd_jobs WHERE queue = 'bench' AND state IN ('queued', 'retry') "
    "ORDER BY priority DESC, run_at, id LIMIT 1) q) + (SELECT count(*) FROM (SELECT 1 FROM preforkd_jobs "
    "WHERE state = 'running' ORDER BY lease_until LIMIT 1) r)";

// preforkctl enqueue --batch of n {"n":i} payloads into a fresh database; false on failure.
bool enqueue_preforkd(const Server& server, Pg& admin, const TempDir& dir, const std::string& config, int n,
                      const std::string& label) {
  reset(admin);
  std::string input;
  for (int i = 0; i < n; ++i) input += "{\"n\":" + std::to_string(i) + "}\n";
  write_file(dir / "payloads", input);
  bool ok = run_quiet({BENCH_PREFORKCTL, "-c", config, "enqueue", "bench", "--batch"}, {}, dir / "payloads", "",
                      dir / "ctl.err", 120);
  long long queued = ok ? Pg(server.conninfo("bench")).num("SELECT count(*) FROM preforkd_jobs WHERE state = 'queued'") : 0;
  if (!ok || queued != n) {
    problems.push_back(label + ": preforkctl enqueue failed (" + std::to_string(queued) + " queued):\n" +
                       tail_of(dir / "ctl.err"));
    return false;
  }
  return true;
}

Run preforkd_drain_once(const Server& server, Pg& admin, Kind kind, int n, const Options& options,
                        int prefetch = 1) {
  Run run;
  run.n = n;
  TempDir dir("drain", options.keep);
  std::string config = write_config(dir, server, kind, prefetch);
  std::string label = std::string("preforkd ") + kind_name(kind);
  if (!enqueue_preforkd(server, admin, dir, config, n, label)) return run;
  Window window(server);
  std::string log = dir / "daemon.log";
  long long poller_statements = 0;
  long long got = 0, left = -1;
  {
    Pg poll(server.conninfo("bench"));
    long long t0 = now_ns();
    pid_t daemon = spawn(daemon_argv(kind, config), {}, "", log, log);
    left = poll.wait_until(preforkd_left, [](long long c) { return c == 0; }, 300, 20, {daemon});
    run.elapsed = seconds_since(t0);
    window.end(run);
    if (is_live(daemon)) run.client_cpu_us = tree_cpu_seconds({daemon}) * 1e6 / n;
    stop_process(daemon, SIGQUIT, 20);
    poller_statements = poll.statements;
  }
  window.totals(run, poller_statements);
  // After a graceful stop nothing may be left running, failed or queued.
  got = Pg(server.conninfo("bench")).num(done_count);
  long long others = Pg(server.conninfo("bench")).num("SELECT count(*) FROM preforkd_jobs WHERE state <> 'done'");
  if (left == 0 && got == n && others == 0) run.rate = n / run.elapsed;
  else problems.push_back(label + ": " + std::to_string(got) + "/" + std::to_string(n) + " done, " +
                          std::to_string(others) + " in another state after the stop; log:\n" + tail_of(log));
  return run;
}

// ---------------------------------------------------------------- raw SKIP LOCKED loop

enum class Raw { min, same, merged };
const char* raw_name(Raw r) { return r == Raw::min ? "min" : r == Raw::same ? "same" : "merged"; }

// The raw loop, in its own process (bench_postgres --raw-worker CONNINFO min|same|merged):
// claim, complete, until the claim finds nothing. Prints the number of jobs it did.
//   min     a minimal table (id, payload, state) and the two shortest statements
//   same    preforkd's table and its own claim and complete statements (pg_queries.cpp)
//   merged  the same two statements sent as one: the complete of the previous job as a
//           data-modifying CTE in front of the next claim (one round trip and one commit
//           per job instead of two). Not what the source does: a what-if for the report.
int raw_worker(const std::string& conninfo, const std::string& variant) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::fprintf(stderr, "connect: %s", PQerrorMessage(c));
    return 1;
  }
  std::string claim, complete;
  std::string worker = "raw:" + std::to_string(::getpid());
  if (variant == "min") {
    claim = "UPDATE raw_jobs SET state = 'running' WHERE id = (SELECT id FROM raw_jobs WHERE state = 'queued' "
            "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, payload";
    complete = "UPDATE raw_jobs SET state = 'done' WHERE id = $1::bigint";
  } else {
    // preforkd's own statements (src/sources/postgres/pg_queries.cpp), same parameters.
    preforkd::postgres::Queries q(preforkd::postgres::TableName{});
    claim = q.claim;
    complete = q.complete;
    if (variant == "merged") {
      // complete: $1 id, $2 worker -> $4 id, $2 worker; claim: $1 queue, $2 worker, $3 lease.
      std::string done = q.complete;
      done.replace(done.find("$1::bigint"), 10, "$4::bigint");
      claim = "WITH done AS (" + done + ") " + q.claim;
    }
  }
  auto check = [&](PGresult* r, const char* what) {
    auto st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      std::fprintf(stderr, "%s: %s", what, PQresultErrorMessage(r));
      std::exit(1);
    }
    return r;
  };
  PQclear(check(PQprepare(c, "claim", claim.c_str(), 0, nullptr), "prepare claim"));
  PQclear(check(PQprepare(c, "complete", complete.c_str(), 0, nullptr), "prepare complete"));
  long long done = 0;
  std::string previous = "0";  // merged: the job the next claim completes (0: none)
  for (;;) {
    std::vector<const char*> claim_params;
    if (variant == "same") claim_params = {"bench", worker.c_str(), "30000"};
    if (variant == "merged") claim_params = {"bench", worker.c_str(), "30000", previous.c_str()};
    PGresult* r = check(PQexecPrepared(c, "claim", static_cast<int>(claim_params.size()), claim_params.data(),
                                       nullptr, nullptr, 0),
                        "claim");
    if (PQntuples(r) == 0) {  // (merged: this claim also completed the last job)
      PQclear(r);
      break;
    }
    std::string id = PQgetvalue(r, 0, 0);
    PQclear(r);
    ++done;
    if (variant == "merged") {
      previous = id;
      continue;
    }
    std::vector<const char*> params = {id.c_str()};
    if (variant != "min") params.push_back(worker.c_str());
    PQclear(check(PQexecPrepared(c, "complete", static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0),
                  "complete"));
  }
  PQfinish(c);
  std::printf("%lld\n", done);
  return 0;
}

Run raw_once(const Server& server, Pg& admin, Raw variant, int n, const Options& options) {
  Run run;
  run.n = n;
  TempDir dir("raw", options.keep);
  std::string label = std::string("raw loop (") + raw_name(variant) + ")";
  std::string count_sql, left_sql;
  if (variant == Raw::min) {
    reset(admin);
    Pg db(server.conninfo("bench"));
    db.cmd("CREATE TABLE raw_jobs (id bigserial PRIMARY KEY, payload text NOT NULL, "
           "state text NOT NULL DEFAULT 'queued')");
    db.cmd("CREATE INDEX raw_jobs_queued ON raw_jobs (id) WHERE state = 'queued'");
    db.cmd("INSERT INTO raw_jobs (payload) SELECT json_build_object('n', i)::text FROM generate_series(0, " +
           std::to_string(n - 1) + ") AS i");
    count_sql = "SELECT count(*) FROM raw_jobs WHERE state = 'done'";
    left_sql = "SELECT count(*) FROM (SELECT 1 FROM raw_jobs WHERE state = 'queued' ORDER BY id LIMIT 1) q";
  } else {
    // preforkd's table, filled the same way as for the preforkd drains.
    std::string config = write_config(dir, server, Kind::in_process, 1);
    if (!enqueue_preforkd(server, admin, dir, config, n, label)) return run;
    count_sql = done_count;
    left_sql = preforkd_left;
  }
  Window window(server);
  long long t0 = now_ns();
  std::vector<pid_t> procs;
  for (int i = 0; i < 2; ++i)
    procs.push_back(spawn({"/proc/self/exe", "--raw-worker", server.conninfo("bench"), raw_name(variant)}, {}, "",
                          dir / "count." + std::to_string(i), dir / "err"));
  // Both exit when the claim finds nothing; wait4 gives each one's CPU time. Meanwhile
  // the queue is polled every 20 ms as in the other drains, so that the server carries
  // the same polling load (the end is the second exit, not the poll).
  bool ok = true;
  double cpu = 0;
  long long until = t0 + 300'000'000'000LL;
  long long poller_statements = 0;
  {
    Pg poll(server.conninfo("bench"));
    long long next_poll = t0;
    for (pid_t p : procs) {
      for (;;) {
        int status = 0;
        rusage ru{};
        pid_t r = ::wait4(p, &status, WNOHANG, &ru);
        if (r == p) {
          forget(p);
          cpu += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
          if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ok = false;
          break;
        }
        if (now_ns() >= until) {
          stop_process(p, SIGKILL, 5);
          ok = false;
          break;
        }
        if (now_ns() >= next_poll) {
          poll.num(left_sql);
          next_poll = now_ns() + 20'000'000LL;
        }
        sleep_ms(1);
      }
    }
    poller_statements = poll.statements;
  }
  run.elapsed = seconds_since(t0);
  window.end(run);
  run.client_cpu_us = cpu * 1e6 / n;
  window.totals(run, poller_statements);
  long long counted = 0;
  for (int i = 0; i < 2; ++i) counted += std::atoll(read_file(dir / "count." + std::to_string(i)).c_str());
  long long done = Pg(server.conninfo("bench")).num(count_sql);
  if (ok && counted == n && done == n) run.rate = n / run.elapsed;
  else problems.push_back(label + ": " + std::to_string(done) + "/" + std::to_string(n) + " done, " +
                          std::to_string(counted) + " counted:\n" + tail_of(dir / "err"));
  return run;
}

// ---------------------------------------------------------------- graphile-worker

const std::string peer_dir = BENCH_POSTGRES_DIR;

Run graphile_once(const Server& server, Pg& admin, int concurrency, int n, const Options& options) {
  Run run;
  run.n = n;
  TempDir dir("graphile", options.keep);
  reset(admin);
  std::string script = peer_dir + "/graphile_peer.js";
  std::string url = server.url("bench");
  // A completed job's row is deleted: poll for the first row left in id order (the
  // primary key; cheap however many are gone), then count.
  const std::string count_sql = "SELECT count(*) FROM graphile_worker._private_jobs";
  const std::string left_sql = "SELECT count(*) FROM (SELECT 1 FROM graphile_worker._private_jobs ORDER BY id LIMIT 1) q";
  if (!run_quiet({"node", script, "add", url, std::to_string(n)}, {}, "", "", dir / "add.err", 180) ||
      Pg(server.conninfo("bench")).try_cmd(count_sql) != std::to_string(n)) {
    problems.push_back("graphile-worker add_jobs failed (" + Pg(server.conninfo("bench")).try_cmd(count_sql) +
                       " jobs):\n" + tail_of(dir / "add.err"));
    return run;
  }
  Window window(server);
  long long left = -1, end = 0, t0 = 0, poller_statements = 0;
  pid_t node = -1;
  {
    Pg poll(server.conninfo("bench"));
    t0 = now_ns();
    // NO_LOG_SUCCESS: graphile-worker's own switch for its per-job "Completed task" line.
    node = spawn({"node", script, "work", url, std::to_string(concurrency), "400"}, {"NO_LOG_SUCCESS=1"}, "",
                 dir / "work.out", dir / "work.err");
    left = poll.wait_until(left_sql, [](long long c) { return c == 0; }, 300, 20, {node});
    end = now_ns();
    window.end(run);
    if (is_live(node)) run.client_cpu_us = tree_cpu_seconds({node}) * 1e6 / n;
    stop_process(node, SIGTERM, 15);
    poller_statements = poll.statements;
  }
  window.totals(run, poller_statements);
  if (left == 0) left = Pg(server.conninfo("bench")).num(count_sql);
  long long start = 0;
  std::istringstream out(read_file(dir / "work.out"));
  for (std::string word; out >> word;)
    if (word == "start") out >> start;
  if (left == 0 && start > t0 && start < end) {
    run.elapsed = static_cast<double>(end - start) / 1e9;
    run.rate = n / run.elapsed;                             // from run()
    run.rate2 = n / (static_cast<double>(end - t0) / 1e9);  // from the process start
  } else {
    problems.push_back("graphile-worker concurrency " + std::to_string(concurrency) + ": " + std::to_string(left) +
                       " jobs left:\n" + tail_of(dir / "work.err"));
  }
  return run;
}

// ---------------------------------------------------------------- latency

struct Latency {
  std::vector<double> ms;
};

Latency latency_run(const Server& server, Pg& admin, const Options& options) {
  TempDir dir("latency", options.keep);
  reset(admin);
  std::string config_path = write_config(dir, server, Kind::in_process, 1);
  preforkd::Config config = preforkd::load_config(config_path, false);
  auto source = preforkd::open_job_source(config.sources.at("shared"));
  std::string log = dir / "daemon.log", lat_file = dir / "latency.txt";
  pid_t daemon = spawn(daemon_argv(Kind::in_process, config_path), {"BENCH_LATENCY_FILE=" + lat_file}, "", log, log);
  Pg poll(server.conninfo("bench"));
  LatencySamples samples = measure_latency(*source, daemon, lat_file, log, options.latency_jobs, options.latency_gap_ms,
                                           [&] { return poll.num(done_count); });
  problems.insert(problems.end(), samples.problems.begin(), samples.problems.end());
  return {samples.ms};
}

// ---------------------------------------------------------------- report

void print_work(const std::string& name, const Measured& m) {
  if (m.runs.empty()) return;
  const Run& r = m.representative;
  std::printf("  %-40s %7s %6s %9s %8s %8s\n", name.c_str(), fmt(r.server_cpu_s * 1e6 / r.n, "%.1f").c_str(),
              fmt(r.elapsed > 0 ? 100 * r.server_cpu_s / r.elapsed : NAN, "%.0f%%").c_str(),
              fmt(r.client_cpu_us, "%.1f").c_str(), fmt(r.xacts_per_job, "%.2f").c_str(),
              fmt(r.rows_per_job, "%.2f").c_str());
}

}  // namespace

int main(int argc, char** argv) {
  set_program("bench_postgres", "benchpg");
  exit_poll_ms = 1;  // as bench_postgres has always looked for its children's exits
  if (argc == 4 && std::string(argv[1]) == "--raw-worker") return raw_worker(argv[2], argv[3]);
  Options options;
  for (Args args(argc, argv); args.next();) {
    if (args.arg() == "--statements") options.statements = true;
    else if (!take_common_option(args, options)) {
      std::fprintf(stderr,
                   "usage: bench_postgres [--jobs N] [--latency-jobs N] [--latency-gap-ms MS] [--repeat R] [--quick] "
                   "[--keep] [--statements]\n       [--only in_process,persistent,graphile,graphile10,raw,latency]\n");
      return 2;
    }
  }
  if (options.jobs < 1 || options.latency_jobs < 1) die("counts must be >= 1");
  install_signal_handlers();

  Server server = start_postgres(options.statements);
  Pg admin(server.conninfo("postgres"));
  if (options.statements) admin.cmd("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  const int n = options.jobs;
  std::printf("preforkd postgres bench: %d no-op jobs per drain, %d latency samples %d ms apart, median of %d run(s)\n",
              n, options.latency_jobs, options.latency_gap_ms, options.repeat);
  std::string settings;
  for (const auto& s : server_settings) settings += " " + s;
  if (options.statements) settings += " shared_preload_libraries=pg_stat_statements (--statements)";
  std::printf("machine: %u cpu(s); PostgreSQL %s on 127.0.0.1:%d (pid %d, %s)\n  settings:%s\n\n",
              std::thread::hardware_concurrency(), admin.cmd("SHOW server_version").c_str(), server.port, server.pid,
              server.dir.c_str(), settings.c_str());
  std::fflush(stdout);

  // The scenarios take turns, round by round (--repeat R rounds), so that a change in
  // the machine's load over the run falls on every side alike.
  struct Scenario {
    std::string part, name;
    std::function<Run()> once;
    Measured m;
  };
  std::vector<Scenario> scenarios = {
      {"in_process", "preforkd in_process", [&] { return preforkd_drain_once(server, admin, Kind::in_process, n, options); }, {}},
      {"persistent", "preforkd persistent", [&] { return preforkd_drain_once(server, admin, Kind::persistent, n, options); }, {}},
      {"graphile", "graphile-worker (concurrency 2)", [&] { return graphile_once(server, admin, 2, n, options); }, {}},
      {"graphile10", "graphile-worker (concurrency 10)", [&] { return graphile_once(server, admin, 10, n, options); }, {}},
      {"raw", "raw SKIP LOCKED loop, minimal table", [&] { return raw_once(server, admin, Raw::min, n, options); }, {}},
      {"raw", "raw loop, preforkd's table and SQL", [&] { return raw_once(server, admin, Raw::same, n, options); }, {}},
      {"raw", "raw loop, preforkd SQL, complete+claim merged", [&] { return raw_once(server, admin, Raw::merged, n, options); }, {}},
      {"in_process", "preforkd in_process, prefetch 20", [&] { return preforkd_drain_once(server, admin, Kind::in_process, n, options, 20); }, {}},
      {"persistent", "preforkd persistent, prefetch 20", [&] { return preforkd_drain_once(server, admin, Kind::persistent, n, options, 20); }, {}},
  };
  for (int round = 1; round <= options.repeat; ++round) {
    for (auto& sc : scenarios) {
      if (!options.wants(sc.part)) continue;
      Run r = sc.once();
      add_run(sc.m, r);
      std::printf("  [%d/%d] %-40s %8s jobs/s", round, options.repeat, sc.name.c_str(), fmt(r.rate).c_str());
      if (!std::isnan(r.rate2)) std::printf(" (%s from the node process start)", fmt(r.rate2).c_str());
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  std::printf("\n");
  const Measured& inproc = scenarios[0].m;
  const Measured& persistent = scenarios[1].m;
  const Measured& graphile2 = scenarios[2].m;
  const Measured& graphile10 = scenarios[3].m;
  const Measured& raw_min = scenarios[4].m;
  const Measured& raw_same = scenarios[5].m;
  const Measured& raw_merged = scenarios[6].m;
  struct Variant {
    std::string name;
    const Measured& m;
  };
  std::vector<Variant> variants = {{"in_process", inproc},
                                   {"persistent", persistent},
                                   {"in_process, prefetch 20", scenarios[7].m},
                                   {"persistent, prefetch 20", scenarios[8].m}};
  Latency lat;
  if (options.wants("latency")) lat = latency_run(server, admin, options);
  double p50 = percentile(lat.ms, 50), p99 = percentile(lat.ms, 99);
  double pmax = lat.ms.empty() ? NAN : *std::max_element(lat.ms.begin(), lat.ms.end());
  std::printf("  enqueue-to-start (in_process, idle, %zu samples, %d ms apart): p50 %s ms  p99 %s ms  max %s ms\n\n",
              lat.ms.size(), options.latency_gap_ms, fmt(p50, "%.2f").c_str(), fmt(p99, "%.2f").c_str(),
              fmt(pmax, "%.2f").c_str());

  // Where the work goes (the median run of each).
  std::printf("Work per job (median run): PostgreSQL server CPU (all its processes, /proc), its share of one core,\n"
              "client CPU (whole process trees), committed transactions and rows written (pg_stat_database,\n"
              "the bench's own polling left out):\n");
  std::printf("  %-40s %7s %6s %9s %8s %8s\n", "", "pg us", "pg %", "client us", "xacts", "rows");
  for (const auto& v : variants) print_work("preforkd " + v.name, v.m);
  print_work("graphile-worker, concurrency 2", graphile2);
  print_work("graphile-worker, concurrency 10", graphile10);
  print_work("raw loop, minimal table", raw_min);
  print_work("raw loop, preforkd's table and SQL", raw_same);
  print_work("raw loop, preforkd SQL merged (what-if)", raw_merged);
  std::printf("\n");
  if (options.statements) {
    auto top = [](const std::string& name, const Measured& m) {
      if (m.runs.empty()) return;
      std::printf("pg_stat_statements, %s (median run):\n", name.c_str());
      for (const auto& line : m.representative.statements) std::printf("  %s\n", line.c_str());
    };
    for (const auto& v : variants) top("preforkd " + v.name, v.m);
    top("graphile-worker, concurrency 2", graphile2);
    top("graphile-worker, concurrency 10", graphile10);
    top("raw loop, minimal table", raw_min);
    top("raw loop, preforkd's table and SQL", raw_same);
    top("raw loop, preforkd SQL, complete+claim merged", raw_merged);
    std::printf("\n");
  }

  std::printf("%-48s %12s\n", "drain, no-op jobs, 2 workers, 20 ms polling", "jobs/s");
  std::printf("%-48s %12s\n", "------------------------------------------------", "------------");
  for (const auto& v : variants)
    std::printf("preforkd %-39s %12s%s\n", v.name.c_str(), shown(v.m).c_str(), runs_of(v.m).c_str());
  std::printf("%-48s %12s%s\n", "graphile-worker, 1 process, concurrency 2", shown(graphile2).c_str(),
              runs_of(graphile2).c_str());
  std::printf("%-48s %12s\n", "  (from node process start)", shown(graphile2, true).c_str());
  std::printf("%-48s %12s%s\n", "graphile-worker, 1 process, concurrency 10", shown(graphile10).c_str(),
              runs_of(graphile10).c_str());
  std::printf("%-48s %12s\n", "  (from node process start)", shown(graphile10, true).c_str());
  std::printf("%-48s %12s%s\n", "raw SKIP LOCKED loop, 2 conns, minimal table", shown(raw_min).c_str(),
              runs_of(raw_min).c_str());
  std::printf("%-48s %12s%s\n", "raw loop, 2 conns, preforkd's table and SQL", shown(raw_same).c_str(),
              runs_of(raw_same).c_str());
  std::printf("%-48s %12s%s\n\n", "  same, complete+claim merged (what-if)", shown(raw_merged).c_str(),
              runs_of(raw_merged).c_str());

  TargetTable targets;
  for (const auto& v : variants) targets.ratio("preforkd " + v.name + " / graphile-worker c2", v.m.rate, graphile2.rate, 3);
  for (const auto& v : variants) targets.ratio("preforkd " + v.name + " / graphile-worker c10", v.m.rate, graphile10.rate, 0);
  for (const auto& v : variants) targets.ratio("preforkd " + v.name + " / raw loop (minimal)", v.m.rate, raw_min.rate, 0);
  for (const auto& v : variants) targets.ratio("preforkd " + v.name + " / raw loop (preforkd SQL)", v.m.rate, raw_same.rate, 0);
  targets.ratio("graphile-worker c2 / raw loop (minimal)", graphile2.rate, raw_min.rate, 0);
  targets.ratio("raw loop preforkd SQL: merged / two statements", raw_merged.rate, raw_same.rate, 0);
  targets.add("enqueue-to-start p50", fmt(p50, "%.2f ms"), "< 5 ms", std::isnan(p50) ? -1 : p50 < 5);
  targets.add("enqueue-to-start p99", fmt(p99, "%.2f ms"), "", -1);
  targets.print();

  for (const auto& p : problems) std::fprintf(stderr, "\nbench_postgres: problem: %s\n", p.c_str());
  stop_process(server.pid, SIGINT, 30);  // fast shutdown
  if (!options.keep) fs::remove_all(server.dir);
  kill_leftovers();
  return problems.empty() ? 0 : 1;
}
