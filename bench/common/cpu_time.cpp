#include "common/cpu_time.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

#include "common/files.hpp"

namespace bench {

double tree_cpu_seconds(const std::vector<pid_t>& roots) {
  struct Proc {
    pid_t ppid;
    double cpu;
  };
  std::map<pid_t, Proc> procs;
  static const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      pid_t pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      std::string stat = read_file("/proc/" + std::string(e->d_name) + "/stat");
      size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream in(stat.substr(close + 2));
      std::string field;
      std::vector<std::string> f;
      while (in >> field) f.push_back(field);
      if (f.size() < 13) continue;  // f[0] = state (field 3): utime is field 14 = f[11]
      procs[pid] = {static_cast<pid_t>(std::atoi(f[1].c_str())),
                    (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) / tick};
    }
    ::closedir(d);
  }
  double total = 0;
  for (const auto& [pid, p] : procs) {
    for (pid_t cur = pid; cur > 1;) {
      if (std::find(roots.begin(), roots.end(), cur) != roots.end()) {
        total += p.cpu;
        break;
      }
      auto it = procs.find(cur);
      if (it == procs.end()) break;
      cur = it->second.ppid;
    }
  }
  return total;
}

}  // namespace bench
