// Tables and targets (see report.hpp).
#include "report.hpp"

#include <cstdio>

namespace bench {

std::string fmt_num(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string fmt_ms(std::optional<double> ms) {
  if (!ms) return "failed";
  return fmt_num(*ms, *ms < 10 ? 2 : 1) + " ms";
}

std::string fmt_rate(std::optional<double> per_second) {
  if (!per_second) return "failed";
  return fmt_num(*per_second, 0) + "/s";
}

std::optional<double> Row::ratio() const {
  if (better == Better::none || !preforkd || !prefork) return std::nullopt;
  if (better == Better::higher) {
    if (*prefork <= 0) return std::nullopt;
    return *preforkd / *prefork;
  }
  if (*preforkd <= 0) return std::nullopt;
  return *prefork / *preforkd;
}

Row& Section::add(std::string title, std::string unit, Better better) {
  rows.push_back(Row{std::move(title), std::move(unit), better, {}, {}, {}, {}, {}});
  return rows.back();
}

const Row* Section::find(const std::string& title_prefix) const {
  for (const auto& row : rows)
    if (row.title.rfind(title_prefix, 0) == 0) return &row;
  return nullptr;
}

namespace {

std::string cell(const Row& row, const std::optional<double>& value, const std::string& text) {
  if (!text.empty()) return text;
  if (!value) return "-";
  if (row.unit == "ms") return fmt_num(*value, *value < 10 ? 2 : 1);
  if (row.unit == "/s") return fmt_num(*value, 0);
  if (row.unit == "s") return fmt_num(*value, 2);
  return fmt_num(*value, 1);
}

void print_section(const Section& section) {
  bool exec = section.kind == Children::exec;
  std::printf("\n### %s\n\n", exec ? "Exec'd children (the same bench_child for both)"
                                   : "In-process children (library pool vs Perl sub)");
  std::printf("| scenario | unit | preforkd | Parallel::Prefork | ratio | bare %s |\n",
              exec ? "fork+exec+waitpid" : "fork+waitpid");
  std::printf("|---|---|---:|---:|---:|---:|\n");
  for (const auto& row : section.rows) {
    auto ratio = row.ratio();
    std::printf("| %s | %s | %s | %s | %s | %s |\n", row.title.c_str(), row.unit.c_str(),
                cell(row, row.preforkd, row.text_preforkd).c_str(),
                cell(row, row.prefork, row.text_prefork).c_str(),
                ratio ? (fmt_num(*ratio, *ratio < 10 ? 2 : 1) + "x").c_str() : "",
                cell(row, row.bare, "").c_str());
  }
}

void target(const char* what, std::optional<bool> met, const std::string& detail) {
  std::printf("- %s: %s (%s)\n", what, !met ? "not measured" : *met ? "MET" : "NOT MET",
              detail.c_str());
}

}  // namespace

void Report::print() const {
  std::printf("\nratio = how many times better preforkd is (Parallel::Prefork time / "
              "preforkd time; preforkd rate / Parallel::Prefork rate)\n");
  if (!in_process_.rows.empty()) print_section(in_process_);
  if (!exec_.rows.empty()) print_section(exec_);
}

int Report::print_targets() const {
  std::printf("\n### Targets\n\n");
  for (const auto& row : in_process_.rows) {
    if (row.title.rfind("cold start", 0) != 0) continue;
    auto r = row.ratio();
    target(("in-process " + row.title + ": >= 8x Parallel::Prefork").c_str(),
           r ? std::optional(*r >= 8) : std::nullopt, r ? fmt_num(*r, 1) + "x" : "-");
  }
  for (const auto& row : in_process_.rows) {
    if (row.title.rfind("churn", 0) != 0) continue;
    auto r = row.ratio();
    target(("in-process " + row.title + ": >= 8x Parallel::Prefork").c_str(),
           r ? std::optional(*r >= 8) : std::nullopt,
           r ? fmt_num(*r, 1) + "x (" + fmt_rate(row.preforkd) + " vs " + fmt_rate(row.prefork) + ")"
             : "-");
  }
  for (const auto& row : exec_.rows) {
    if (row.title.rfind("churn", 0) != 0) continue;
    std::optional<bool> met;
    std::string detail = "-";
    if (row.preforkd && row.bare && *row.bare > 0) {
      double share = *row.preforkd / *row.bare;
      met = share >= 0.85;
      detail = fmt_num(share * 100, 0) + "% of the bare loop (" + fmt_rate(row.preforkd) +
               " vs " + fmt_rate(row.bare) + ")";
    }
    target(("exec'd " + row.title + ": within 15% of bare fork+exec+waitpid").c_str(), met, detail);
  }
  for (const Section* s : {&in_process_, &exec_}) {
    const char* kind = s->kind == Children::exec ? "exec'd" : "in-process";
    if (const Row* row = s->find("respawn latency after kill -9, median")) {
      target((std::string(kind) + " respawn latency: median < 5 ms").c_str(),
             row->preforkd ? std::optional(*row->preforkd < 5) : std::nullopt,
             fmt_ms(row->preforkd));
    }
    if (s->reload_preforkd) {
      const Reload& r = *s->reload_preforkd;
      bool met = r.complete_ms() <= r.longest_work_ms + 50 && r.cut_off == 0;
      target((std::string(kind) + " reload: done within 50 ms of the longest piece of work, "
                                  "none cut off").c_str(),
             met,
             "complete " + fmt_ms(r.complete_ms()) + " after HUP, last work done " +
                 fmt_ms(r.longest_work_ms) + ", cut off " + std::to_string(r.cut_off) + " of " +
                 std::to_string(r.started));
    }
    if (const Row* row = s->find("supervisor VmRSS")) {
      target((std::string(kind) + " supervisor RSS < 8 MiB").c_str(),
             row->preforkd ? std::optional(*row->preforkd < 8) : std::nullopt,
             row->preforkd ? fmt_num(*row->preforkd, 1) + " MiB" : "-");
    }
    if (const Row* row = s->find("supervisor CPU")) {
      target((std::string(kind) + " supervisor idle CPU 0.00 s").c_str(),
             row->preforkd ? std::optional(*row->preforkd < 0.005) : std::nullopt,
             row->preforkd ? fmt_num(*row->preforkd, 2) + " s" : "-");
    }
  }
  return 0;
}

}  // namespace bench
