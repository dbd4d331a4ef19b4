#include "common/options.hpp"

#include <algorithm>
#include <cstdlib>

#include "common/program.hpp"

namespace bench {

bool CommonOptions::wants(const std::string& part) const {
  return only.empty() || ("," + only + ",").find("," + part + ",") != std::string::npos;
}

bool Args::next() {
  if (i_ + 1 >= argc_) return false;
  arg_ = argv_[++i_];
  return true;
}

int Args::number() {
  if (!has_value()) die(arg_ + " needs a value");
  return std::atoi(argv_[++i_]);
}

bool take_common_option(Args& args, CommonOptions& options) {
  const std::string& a = args.arg();
  if (a == "--jobs") options.jobs = args.number();
  else if (a == "--latency-jobs") options.latency_jobs = args.number();
  else if (a == "--latency-gap-ms") options.latency_gap_ms = args.number();
  else if (a == "--repeat") options.repeat = std::max(1, args.number());
  else if (a == "--keep") options.keep = true;
  else if (a == "--only" && args.has_value()) options.only = args.text();
  else if (a == "--quick") {
    options.jobs = 2000;
    options.latency_jobs = 100;
  } else {
    return false;
  }
  return true;
}

}  // namespace bench
