// Finding this process's children in /proc (see child_processes.hpp).
#include "util/child_processes.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace preforkd {
namespace {

// The state letter and parent of /proc/PID/stat: "PID (COMM) S PPID ...". The name
// may hold spaces and parentheses: read from the last ')'.
bool read_state_and_parent(const char* pid, char& state, pid_t& parent) {
  std::string path = std::string("/proc/") + pid + "/stat";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char text[512];
  ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return false;
  text[n] = '\0';
  const char* close = std::strrchr(text, ')');
  if (!close || close[1] != ' ' || close[2] == '\0') return false;
  state = close[2];
  parent = static_cast<pid_t>(std::strtol(close + 3, nullptr, 10));
  return true;
}

}  // namespace

std::vector<pid_t> live_children_of_self() {
  std::vector<pid_t> children;
  DIR* proc = ::opendir("/proc");
  if (!proc) return children;
  pid_t self = ::getpid();
  while (dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    char state = 0;
    pid_t parent = 0;
    if (read_state_and_parent(entry->d_name, state, parent) && parent == self && state != 'Z')
      children.push_back(static_cast<pid_t>(std::atol(entry->d_name)));
  }
  ::closedir(proc);
  return children;
}

}  // namespace preforkd
