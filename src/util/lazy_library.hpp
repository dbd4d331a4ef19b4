// A shared library opened on first use instead of linked: preforkd's optional
// dependencies (libpq, libsystemd) then cost nothing in a process that never calls them.
#pragma once

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace preforkd {

class LazyLibrary {
 public:
  explicit LazyLibrary(const char* soname) : soname_(soname) {}
  LazyLibrary(const LazyLibrary&) = delete;
  LazyLibrary& operator=(const LazyLibrary&) = delete;

  // dlopen on the first call, once even with threads; nullptr when the library cannot be
  // loaded, and load_error() then says why (dlerror's text).
  void* handle() {
    std::call_once(once_, [this] {
      handle_ = ::dlopen(soname_, RTLD_NOW | RTLD_LOCAL);
      if (!handle_) error_ = ::dlerror();
    });
    return handle_;
  }
  const std::string& load_error() {
    handle();
    return error_;
  }
  // NAME from the library, or nullptr when it is not loaded or has no NAME.
  template <typename Function>
  Function* resolve(const char* name) {
    void* library = handle();
    return library ? reinterpret_cast<Function*>(::dlsym(library, name)) : nullptr;
  }

 private:
  const char* soname_;
  std::once_flag once_;
  void* handle_ = nullptr;
  std::string error_;
};

}  // namespace preforkd
