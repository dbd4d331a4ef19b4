// The pidfile: refuse to start while a live process holds it, write it atomically,
// remove it at exit only if it is still ours.
#pragma once

#include <string>

namespace preforkd {

class Pidfile {
 public:
  Pidfile() = default;
  // Throws std::runtime_error with an operator-facing message when another live
  // process holds `path`, or when it cannot be written.
  explicit Pidfile(std::string path);
  Pidfile(const Pidfile&) = delete;
  Pidfile& operator=(const Pidfile&) = delete;
  ~Pidfile();

 private:
  std::string path_;
};

}  // namespace preforkd
