// The command line the job benchmark drivers share (--jobs N, --latency-jobs N,
// --latency-gap-ms MS, --repeat R, --keep, --only LIST, --quick), read one argument at
// a time so that each driver can take its own options around them.
#pragma once

#include <string>

namespace bench {

struct CommonOptions {
  int jobs = 20000;
  int latency_jobs = 300;
  int latency_gap_ms = 5;
  int repeat = 1;     // rounds; the median is shown
  bool keep = false;  // keep the temp dirs
  std::string only;   // comma-separated parts to run; empty: all
  bool wants(const std::string& part) const;
};

class Args {
 public:
  Args(int argc, char** argv) : argc_(argc), argv_(argv) {}
  // To the next argument; false after the last.
  bool next();
  const std::string& arg() const { return arg_; }
  bool has_value() const { return i_ + 1 < argc_; }
  // The argument after arg(), as a number; dies ("--jobs needs a value") without one.
  int number();
  std::string text() { return argv_[++i_]; }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string arg_;
};

// Takes arg() (and its value) when it is one of CommonOptions'; false for any other
// argument, and for --only without a list: the caller prints its usage.
bool take_common_option(Args& args, CommonOptions& options);

}  // namespace bench
