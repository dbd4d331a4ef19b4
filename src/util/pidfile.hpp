// The pidfile: refuse to start while another preforkd holds it, write it atomically,
// remove it at exit only if it is still ours. "Holds" is an flock on the file, which
// ends with the process: a stale pidfile whose pid now names an unrelated process
// (pid reuse, a reboot) does not block a start.
#pragma once

#include <string>

#include "util/unique_fd.hpp"

namespace preforkd {

// Why the file at `path` is not one preforkd may take as its pidfile (replace at start,
// remove at exit): "" when it is missing, a symlink (replaced, never followed), or a
// regular file holding one pid or nothing; else what it is, for the operator.
std::string why_not_a_pidfile(const std::string& path);
// The refusal, as --check and the start give it.
std::string not_a_pidfile_message(const std::string& path, const std::string& why);

class Pidfile {
 public:
  Pidfile() = default;
  // Throws std::runtime_error with an operator-facing message when another running
  // preforkd holds `path`, or when it cannot be written.
  explicit Pidfile(std::string path);
  Pidfile(const Pidfile&) = delete;
  Pidfile& operator=(const Pidfile&) = delete;
  ~Pidfile();

 private:
  std::string path_;  // empty when not ours
  UniqueFd lock_;     // the pidfile itself, flock'ed
};

}  // namespace preforkd
