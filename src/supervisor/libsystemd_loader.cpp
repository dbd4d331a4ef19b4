// libsystemd, loaded when preforkd first talks to systemd (NOTIFY_SOCKET is set) rather
// than at every start. Linked directly, libsystemd maps six more libraries (libgcrypt,
// liblzma, libzstd, liblz4, libcap, libgpg-error) into the supervisor: load time at every
// start, and mappings that every fork of a library pool's child has to copy. Under
// daemontools, a shell or a test there is no NOTIFY_SOCKET and none of it is loaded.
// The notifier calls sd_notify and sd_watchdog_enabled as usual; these definitions
// forward to libsystemd's own, found with dlsym on first use.
#include <systemd/sd-daemon.h>

#include <cerrno>

#include "util/lazy_library.hpp"

namespace {

preforkd::LazyLibrary& libsystemd() {
  static preforkd::LazyLibrary library("libsystemd.so.0");
  return library;
}

}  // namespace

// A missing libsystemd is reported like any failed sd_notify: a negative errno, which
// the notifier logs. The functions keep libsystemd's signatures (a mismatch with
// sd-daemon.h does not compile).
extern "C" int sd_notify(int unset_environment, const char* state) {
  static auto* real = libsystemd().resolve<decltype(sd_notify)>("sd_notify");
  return real ? real(unset_environment, state) : -ELIBACC;
}

extern "C" int sd_watchdog_enabled(int unset_environment, uint64_t* usec) {
  static auto* real = libsystemd().resolve<decltype(sd_watchdog_enabled)>("sd_watchdog_enabled");
  return real ? real(unset_environment, usec) : -ELIBACC;
}
