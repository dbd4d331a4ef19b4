// Pidfile handling (see pidfile.hpp).
#include "util/pidfile.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <stdexcept>

#include "util/log.hpp"

namespace preforkd {
namespace {

pid_t read_pid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

bool process_alive(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace

Pidfile::Pidfile(std::string path) : path_(std::move(path)) {
  if (pid_t other = read_pid(path_); other > 0 && other != ::getpid() && process_alive(other)) {
    std::string message = fmt::format(
        "{}: pidfile is held by running process {}; stop it first, or remove the "
        "pidfile if that process is not preforkd", path_, other);
    path_.clear();
    throw std::runtime_error(message);
  }
  // Write beside it and rename, so a reader never sees a half-written pid.
  std::string temp = path_ + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    path_.clear();
    throw std::runtime_error(syscall_error("open", temp, err));
  }
  std::string text = std::to_string(::getpid()) + "\n";
  bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!written || ::rename(temp.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    std::string target = path_;
    path_.clear();
    throw std::runtime_error(syscall_error("rename", target, err));
  }
}

Pidfile::~Pidfile() {
  if (!path_.empty() && read_pid(path_) == ::getpid()) ::unlink(path_.c_str());
}

}  // namespace preforkd
