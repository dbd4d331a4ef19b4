// Pidfile handling (see pidfile.hpp).
#include "util/pidfile.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
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

// True when `fd` is the file that `path` names now.
bool names(const std::string& path, int fd) {
  struct stat by_path {}, by_fd {};
  return ::stat(path.c_str(), &by_path) == 0 && ::fstat(fd, &by_fd) == 0 &&
         by_path.st_dev == by_fd.st_dev && by_path.st_ino == by_fd.st_ino;
}

[[noreturn]] void fail(const char* call, const std::string& path) {
  throw std::runtime_error(syscall_error(call, path, errno));
}

}  // namespace

std::string not_a_pidfile_message(const std::string& path, const std::string& why) {
  return path + ": " + why + "; a pidfile is replaced at start and removed at exit, so preforkd "
         "will not take this file: point `pidfile:` at another path (or remove the file if it "
         "is an old pidfile)";
}

std::string why_not_a_pidfile(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return "";
  if (!S_ISREG(st.st_mode)) return "it is not a regular file";
  constexpr off_t longest = 32;  // a pid, a newline, and room for spaces
  if (st.st_size > longest) return "it holds " + std::to_string(st.st_size) + " bytes, not a pid";
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t end = text.find_last_not_of(" \t\r\n");
  text = end == std::string::npos ? "" : text.substr(0, end + 1);
  bool pid = text.find_first_not_of("0123456789") == std::string::npos;
  if (pid) return "";
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return "it holds '" + text + "', not a pid";
}

Pidfile::Pidfile(std::string path) {
  // The new pidfile is written and locked beside the old one, then put in place in one
  // step (link when there is none, rename over a stale one): a reader never sees a
  // half-written pid. The lock lives as long as this process.
  if (std::string why = why_not_a_pidfile(path); !why.empty())
    throw std::runtime_error(not_a_pidfile_message(path, why));
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  lock_ = UniqueFd(::open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!lock_) fail("open", temp);
  std::string text = std::to_string(::getpid()) + "\n";
  bool ready = ::write(lock_.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
               ::flock(lock_.get(), LOCK_EX | LOCK_NB) == 0;
  try {
    if (!ready) fail("write", temp);
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (::link(temp.c_str(), path.c_str()) == 0) break;
      if (errno != EEXIST) fail("link", path);
      // One is there. Its lock is held exactly while the process that wrote it lives,
      // whatever its pid now names (a pid can be reused, after a reboot most of all).
      UniqueFd other(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!other) {
        if (errno == ENOENT) continue;  // its owner just removed it
        fail("open", path);
      }
      if (::flock(other.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) fail("flock", path);
        throw std::runtime_error(fmt::format(
            "{}: pidfile is held by running process {}; stop that preforkd first, or point "
            "`pidfile:` elsewhere to run a second one",
            path, read_pid(path)));
      }
      // Stale (its process is gone). Replaced only if no other starter replaced it
      // meanwhile; holding its lock keeps a second starter out until then.
      if (!names(path, other.get())) continue;
      if (::rename(temp.c_str(), path.c_str()) != 0) fail("rename", path);
      temp.clear();
      break;
    }
    if (!names(path, lock_.get())) throw std::runtime_error(path + ": pidfile keeps changing; is another preforkd starting?");
  } catch (...) {
    if (!temp.empty()) ::unlink(temp.c_str());
    throw;
  }
  if (!temp.empty()) ::unlink(temp.c_str());
  path_ = std::move(path);
}

Pidfile::~Pidfile() {
  if (!path_.empty() && names(path_, lock_.get())) ::unlink(path_.c_str());
}

}  // namespace preforkd
