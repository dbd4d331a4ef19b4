// bench_supervisor: preforkd against Parallel::Prefork (spawn_interval 0) and the bare
// fork(+exec)+waitpid limit, in one invocation: once with in-process children (a
// library pool vs a Perl sub in start()), once with the same exec'd C child for both.
// Prints each figure as it is measured, then one table per kind of child and which of
// the targets are met. See bench/README.md.
#include <sys/prctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "events.hpp"
#include "processes.hpp"
#include "report.hpp"
#include "scenarios.hpp"

namespace {

using namespace bench;

constexpr const char* usage_text =
    "usage: bench_supervisor [options]\n"
    "  --duration S        churn measurement window per run (default 10)\n"
    "  --idle S            idle-CPU window with 32 idle children (default 10)\n"
    "  --sizes LIST        cold start sizes (default 2,8,32,128)\n"
    "  --reps N            cold starts per size and side, median (default 3)\n"
    "  --kills N           kill -9 samples for respawn latency (default 50)\n"
    "  --reloads N         HUPs per side, median (default 3)\n"
    "  --churn-workers L   children of the churning pool, a list (default 1,8)\n"
    "  --workers N         children for the latency and reload runs (default 8)\n"
    "  --work-ms MS        length of each piece of work in the reload run (default 200)\n"
    "  --children KIND     in-process | exec | both (default both)\n"
    "  --library-pool LINK static | dynamic: the in-process preforkd program, linked with\n"
    "                      preforkd_static_program (default) or dynamically\n"
    "  --scenarios LIST    cold,churn,latency,reload,idle (default all)\n"
    "  --keep              keep the temporary directory (configs, supervisor logs)\n"
    "  --quick             --duration 2 --idle 2 --reps 1 --kills 20 --reloads 2\n";

// Other work on the machine moves every figure: the load is printed with them.
std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  char text[128] = "?";
  if (f) {
    if (!std::fgets(text, sizeof text, f)) text[0] = 0;
    std::fclose(f);
  }
  std::string s = text;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::atoi(item.c_str()));
  return out;
}

struct Options {
  double duration = 10, idle = 10;
  std::vector<int> sizes = {2, 8, 32, 128};
  int reps = 3, kills = 50, reloads = 3, workers = 8, work_ms = 200;
  std::vector<int> churn_workers = {1, 8};
  std::vector<Children> kinds = {Children::in_process, Children::exec};
  std::set<std::string> scenarios = {"cold", "churn", "latency", "reload", "idle"};
  bool keep_work_dir = false;
  bool dynamic_library_pool = false;
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--duration") o.duration = std::atof(value().c_str());
    else if (arg == "--idle") o.idle = std::atof(value().c_str());
    else if (arg == "--sizes") o.sizes = parse_list(value());
    else if (arg == "--reps") o.reps = std::atoi(value().c_str());
    else if (arg == "--kills") o.kills = std::atoi(value().c_str());
    else if (arg == "--reloads") o.reloads = std::atoi(value().c_str());
    else if (arg == "--churn-workers") o.churn_workers = parse_list(value());
    else if (arg == "--workers") o.workers = std::atoi(value().c_str());
    else if (arg == "--work-ms") o.work_ms = std::atoi(value().c_str());
    else if (arg == "--children") {
      std::string kind = value();
      if (kind == "in-process") o.kinds = {Children::in_process};
      else if (kind == "exec") o.kinds = {Children::exec};
      else if (kind != "both") throw std::invalid_argument("--children: " + kind);
    } else if (arg == "--library-pool") {
      std::string link = value();
      if (link == "dynamic") o.dynamic_library_pool = true;
      else if (link != "static") throw std::invalid_argument("--library-pool: " + link);
    } else if (arg == "--scenarios") {
      std::stringstream in(value());
      o.scenarios.clear();
      for (std::string item; std::getline(in, item, ',');) o.scenarios.insert(item);
    } else if (arg == "--keep") {
      o.keep_work_dir = true;
    } else if (arg == "--quick") {
      o.duration = 2, o.idle = 2, o.reps = 1, o.kills = 20, o.reloads = 2;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(usage_text, stdout);
      return false;
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "'");
    }
  }
  return true;
}

void measure(Bench& bench, const Options& o, Children kind, Report& report) {
  bool exec = kind == Children::exec;
  Side preforkd{Supervisor::preforkd, kind}, prefork{Supervisor::prefork, kind};
  const Side sides[] = {preforkd, prefork};
  auto& section = report.section(kind);
  auto note = [](const std::string& what, const std::string& value) {
    std::printf("  %-58s %s\n", what.c_str(), value.c_str());
    std::fflush(stdout);
  };
  std::printf("\n== %s children ==\n", exec ? "exec'd" : "in-process");

  if (o.scenarios.count("cold")) {
    for (int n : o.sizes) {
      Row& row = section.add("cold start, " + std::to_string(n) + " children ready", "ms",
                             Better::lower);
      row.preforkd = cold_start(bench, preforkd, n, o.reps);
      note(preforkd.label() + ": cold start " + std::to_string(n), fmt_ms(row.preforkd));
      row.prefork = cold_start(bench, prefork, n, o.reps);
      note(prefork.label() + ": cold start " + std::to_string(n), fmt_ms(row.prefork));
      row.bare = cold_start_bare(bench, exec, n, o.reps);
      note("bare: cold start " + std::to_string(n), fmt_ms(row.bare));
    }
  }
  if (o.scenarios.count("churn")) {
    std::optional<double> bare;  // one bare run serves every row: it is one at a time
    for (int workers : o.churn_workers) {
      Row& row = section.add("churn, pool of " + std::to_string(workers) + ", children exit at once",
                             "/s", Better::higher);
      std::string label = ": churn, pool of " + std::to_string(workers);
      row.preforkd = churn(bench, preforkd, workers, o.duration);
      note(preforkd.label() + label, fmt_rate(row.preforkd));
      row.prefork = churn(bench, prefork, workers, o.duration);
      note(prefork.label() + label, fmt_rate(row.prefork));
      if (!bare) {
        bare = churn_bare(bench, exec, o.duration);
        note("bare: churn, one child at a time", fmt_rate(bare));
      }
      row.bare = bare;
    }
  }
  if (o.scenarios.count("latency")) {
    Row& med = section.add("respawn latency after kill -9, median", "ms", Better::lower);
    Row& p99 = section.add("respawn latency after kill -9, p99", "ms", Better::lower);
    for (const Side& side : sides) {
      auto l = respawn_latency(bench, side, o.workers, o.kills);
      (side.supervisor == Supervisor::preforkd ? med.preforkd : med.prefork) =
          l ? std::optional(l->median_ms) : std::nullopt;
      (side.supervisor == Supervisor::preforkd ? p99.preforkd : p99.prefork) =
          l ? std::optional(l->p99_ms) : std::nullopt;
      note(side.label() + ": respawn latency median / p99",
           l ? fmt_ms(l->median_ms) + " / " + fmt_ms(l->p99_ms) : "failed");
    }
    auto l = respawn_latency_bare(bench, exec, o.kills);
    if (l) med.bare = l->median_ms, p99.bare = l->p99_ms;
    note("bare: fork -> ready, median / p99",
         l ? fmt_ms(l->median_ms) + " / " + fmt_ms(l->p99_ms) : "failed");
  }
  if (o.scenarios.count("reload")) {
    std::string busy = std::to_string(o.workers) + " children busy " + std::to_string(o.work_ms) + " ms";
    Row& ready = section.add("reload (" + busy + "): HUP -> new children ready", "ms", Better::lower);
    Row& gone = section.add("reload: HUP -> old children gone", "ms", Better::lower);
    Row& work = section.add("reload: HUP -> last old piece of work done", "ms", Better::none);
    Row& cut = section.add("reload: pieces of work cut off / begun", "", Better::none);
    for (const Side& side : sides) {
      auto r = reload(bench, side, o.workers, o.reloads, o.work_ms);
      bool pf = side.supervisor == Supervisor::preforkd;
      if (r) {
        (pf ? ready.preforkd : ready.prefork) = r->new_ready_ms;
        (pf ? gone.preforkd : gone.prefork) = r->old_gone_ms;
        (pf ? work.preforkd : work.prefork) = r->longest_work_ms;
        (pf ? cut.text_preforkd : cut.text_prefork) =
            std::to_string(r->cut_off) + " / " + std::to_string(r->started);
        (pf ? section.reload_preforkd : section.reload_prefork) = *r;
      }
      note(side.label() + ": reload new ready / old gone / last work",
           r ? fmt_ms(r->new_ready_ms) + " / " + fmt_ms(r->old_gone_ms) + " / " +
                   fmt_ms(r->longest_work_ms) + ", cut off " + std::to_string(r->cut_off) +
                   " of " + std::to_string(r->started)
             : "failed");
    }
  }
  if (o.scenarios.count("idle")) {
    char title[96];
    std::snprintf(title, sizeof title, "supervisor VmRSS, 32 idle children");
    Row& rss = section.add(title, "MiB", Better::lower);
    std::snprintf(title, sizeof title, "supervisor CPU (utime+stime) over %.0f s idle", o.idle);
    Row& cpu = section.add(title, "s", Better::lower);
    std::snprintf(title, sizeof title, "  same, from schedstat (ns precision)");
    Row& run = section.add(title, "ms", Better::lower);
    for (const Side& side : sides) {
      auto r = idle(bench, side, 32, o.idle);
      bool pf = side.supervisor == Supervisor::preforkd;
      if (r) {
        (pf ? rss.preforkd : rss.prefork) = r->rss_kib / 1024.0;
        (pf ? cpu.preforkd : cpu.prefork) = r->cpu_seconds;
        (pf ? run.preforkd : run.prefork) = r->run_seconds * 1000;
      }
      note(side.label() + ": VmRSS / VmHWM / idle CPU / schedstat",
           r ? fmt_num(r->rss_kib / 1024.0, 1) + " MiB / " + fmt_num(r->hwm_kib / 1024.0, 1) +
                   " MiB / " + fmt_num(r->cpu_seconds, 2) + " s / " +
                   fmt_num(r->run_seconds * 1000, 3) + " ms"
             : "failed");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    if (!parse(argc, argv, options)) return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_supervisor: %s\n%s", e.what(), usage_text);
    return 2;
  }
  // Orphans of a measured supervisor come back to the bench, which reaps (or kills)
  // them: nothing it started outlives a run.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  char dir_template[] = "/tmp/preforkd-bench.XXXXXX";
  if (!::mkdtemp(dir_template)) {
    std::perror("mkdtemp");
    return 1;
  }
  std::string work_dir = dir_template;
  Paths paths{options.dynamic_library_pool ? BENCH_LIBRARY_POOL_DYNAMIC : BENCH_LIBRARY_POOL,
              BENCH_PREFORKD, BENCH_CHILD, BENCH_BARE_FORK,
              BENCH_PEER_SCRIPT,  work_dir,       work_dir + "/events.fifo"};
  int status = 0;
  {
    EventLog events(paths.fifo);
    Bench bench{paths, events, {}};
    Report report;
    std::printf("preforkd supervisor bench: churn %.0f s, idle %.0f s, %d cold starts per size, "
                "%d kills, %d reloads; library pool linked %s; %ld CPUs; load average %s\n",
                options.duration, options.idle, options.reps, options.kills, options.reloads,
                options.dynamic_library_pool ? "dynamically" : "static",
                ::sysconf(_SC_NPROCESSORS_ONLN), load_average().c_str());
    try {
      for (Children kind : options.kinds) measure(bench, options, kind, report);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_supervisor: %s\n", e.what());
      status = 1;
    }
    report.print();
    std::printf("\nload average at the end: %s\n", load_average().c_str());
    if (!bench.notes.empty()) {
      std::printf("\nNotes:\n");
      for (const auto& n : bench.notes) std::printf("- %s\n", n.c_str());
    }
    if (status == 0) status = report.print_targets();
    reap_leftovers();
  }
  if (options.keep_work_dir) std::printf("\nkept %s\n", work_dir.c_str());
  else std::filesystem::remove_all(work_dir);
  return status == 1 ? 1 : 0;
}
