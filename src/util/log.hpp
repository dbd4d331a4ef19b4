// Process-wide logging: spdlog to stderr (journald, multilog) or to a file that USR1
// reopens, as text or one JSON object per line.
#pragma once

#include <spdlog/spdlog.h>

// fmt 9 declares its formatting engine extern nowhere (fmtlib issue 2377), so every file
// that logs would instantiate and compile it again; src/util/log_library_instances.cpp
// holds the one copy.
extern template FMT_API void fmt::detail::vformat_to<char>(
    fmt::detail::buffer<char>&, fmt::basic_string_view<char>,
    fmt::basic_format_args<FMT_BUFFER_CONTEXT(char)>, fmt::detail::locale_ref);

#include "preforkd/config.hpp"

namespace preforkd {

// Installs the default logger for `config`. Safe to call again (reload, USR1 reopen):
// the new sinks replace the old ones. Throws std::runtime_error if the file cannot be
// opened.
void configure_logging(const LogConfig& config);

// Reopens the log file after logrotate moved it (no-op when logging to stderr), in
// this process and, at their next line, in every forked child. When the path cannot be
// opened the error is logged and the old file stays in use: never throws.
void reopen_log_file();

// In a process forked before the last reopen_log_file (the fork server, a spare, a new
// child), opens the log file afresh now rather than at its next line: called while it
// is still root, before a child switches to its pool's `user:`, which may not be allowed
// to open the file. Failures are silent: the process keeps the file it has.
void follow_log_reopen();

// In a long-lived forked process that may run as a pool's `user:` (a jobs worker between
// jobs): follows a reopen now, so that it lets go of the old file, and says a failure to
// open the new one at its next line, as a reopen found at a line does.
void follow_log_reopen_between_jobs();

// The text of errno for a failed system call: "open(/x): No such file or directory".
std::string syscall_error(const char* call, const std::string& argument, int err);

}  // namespace preforkd
