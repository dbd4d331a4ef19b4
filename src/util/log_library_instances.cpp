// spdlog and fmt, compiled once here instead of in every file that logs.
//
// Both are header-only by default: every translation unit that included spdlog.h
// compiled their whole implementation again (src/util/pidfile.cpp took 17.6 s, 2.7 s
// without). With this file and the extern declaration in log.hpp, a clean build of the
// project, its tests and benchmarks went from 9m10s to 6m11s on 2 cores.
// CMakeLists.txt defines SPDLOG_COMPILED_LIB for everything that links preforkd, and not
// FMT_HEADER_ONLY, so the headers only declare; this file defines, as the libraries' own
// src/*.cc do. Debian ships those compiled only as shared libraries, which preforkd does
// not load: every mapped library is copied at each fork of a child (CMakeLists.txt).
#ifndef SPDLOG_COMPILED_LIB
#error "SPDLOG_COMPILED_LIB must be defined for everything that links preforkd (CMakeLists.txt)"
#endif
#ifdef FMT_HEADER_ONLY
#error "FMT_HEADER_ONLY would compile fmt in every file again (CMakeLists.txt)"
#endif

#include <fmt/format-inl.h>

#include <mutex>

// fmt: what its headers declare extern or leave to the compiled library.
FMT_BEGIN_NAMESPACE
namespace detail {
template FMT_API auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template FMT_API auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template FMT_API locale_ref::locale_ref(const std::locale& loc);
template FMT_API auto locale_ref::get<std::locale>() const -> std::locale;
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<wchar_t>;
template FMT_API auto decimal_point_impl(locale_ref) -> wchar_t;
template FMT_API void buffer<char>::append(const char*, const char*);
template FMT_API void buffer<wchar_t>::append(const wchar_t*, const wchar_t*);
template FMT_API void vformat_to(buffer<char>&, string_view,
                                 basic_format_args<FMT_BUFFER_CONTEXT(char)>, locale_ref);
}  // namespace detail
FMT_END_NAMESPACE

// spdlog: all of what its own compiled library (libspdlog) holds, so that a program that
// links preforkd_lib may use any of spdlog's loggers and sinks (file, rotating, colour,
// async), not only the ones preforkd uses.
#include <spdlog/async.h>
#include <spdlog/async_logger-inl.h>
#include <spdlog/cfg/helpers-inl.h>
#include <spdlog/common-inl.h>
#include <spdlog/details/backtracer-inl.h>
#include <spdlog/details/file_helper-inl.h>
#include <spdlog/details/log_msg-inl.h>
#include <spdlog/details/log_msg_buffer-inl.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/details/os-inl.h>
#include <spdlog/details/periodic_worker-inl.h>
#include <spdlog/details/registry-inl.h>
#include <spdlog/details/thread_pool-inl.h>
#include <spdlog/logger-inl.h>
#include <spdlog/pattern_formatter-inl.h>
#include <spdlog/sinks/ansicolor_sink-inl.h>
#include <spdlog/sinks/base_sink-inl.h>
#include <spdlog/sinks/basic_file_sink-inl.h>
#include <spdlog/sinks/rotating_file_sink-inl.h>
#include <spdlog/sinks/sink-inl.h>
#include <spdlog/sinks/stdout_color_sinks-inl.h>
#include <spdlog/sinks/stdout_sinks-inl.h>
#include <spdlog/spdlog-inl.h>

namespace spdlog {

template SPDLOG_API logger::logger(std::string name, sinks_init_list::iterator begin,
                                   sinks_init_list::iterator end);
template class SPDLOG_API details::mpmc_blocking_queue<details::async_msg>;

namespace sinks {
template class SPDLOG_API base_sink<std::mutex>;
template class SPDLOG_API base_sink<details::null_mutex>;
template class SPDLOG_API basic_file_sink<std::mutex>;
template class SPDLOG_API basic_file_sink<details::null_mutex>;
template class SPDLOG_API rotating_file_sink<std::mutex>;
template class SPDLOG_API rotating_file_sink<details::null_mutex>;
template class SPDLOG_API stdout_sink_base<details::console_mutex>;
template class SPDLOG_API stdout_sink_base<details::console_nullmutex>;
template class SPDLOG_API stdout_sink<details::console_mutex>;
template class SPDLOG_API stdout_sink<details::console_nullmutex>;
template class SPDLOG_API stderr_sink<details::console_mutex>;
template class SPDLOG_API stderr_sink<details::console_nullmutex>;
template class SPDLOG_API ansicolor_sink<details::console_mutex>;
template class SPDLOG_API ansicolor_sink<details::console_nullmutex>;
template class SPDLOG_API ansicolor_stdout_sink<details::console_mutex>;
template class SPDLOG_API ansicolor_stdout_sink<details::console_nullmutex>;
template class SPDLOG_API ansicolor_stderr_sink<details::console_mutex>;
template class SPDLOG_API ansicolor_stderr_sink<details::console_nullmutex>;
}  // namespace sinks

// The factory functions, for both of spdlog's factories.
#define PREFORKD_SPDLOG_FACTORIES(Factory)                                                   \
  template SPDLOG_API std::shared_ptr<logger> stdout_logger_mt<Factory>(const std::string&); \
  template SPDLOG_API std::shared_ptr<logger> stdout_logger_st<Factory>(const std::string&); \
  template SPDLOG_API std::shared_ptr<logger> stderr_logger_mt<Factory>(const std::string&); \
  template SPDLOG_API std::shared_ptr<logger> stderr_logger_st<Factory>(const std::string&); \
  template SPDLOG_API std::shared_ptr<logger> stdout_color_mt<Factory>(const std::string&,   \
                                                                       color_mode);          \
  template SPDLOG_API std::shared_ptr<logger> stdout_color_st<Factory>(const std::string&,   \
                                                                       color_mode);          \
  template SPDLOG_API std::shared_ptr<logger> stderr_color_mt<Factory>(const std::string&,   \
                                                                       color_mode);          \
  template SPDLOG_API std::shared_ptr<logger> stderr_color_st<Factory>(const std::string&,   \
                                                                       color_mode);
PREFORKD_SPDLOG_FACTORIES(synchronous_factory)
PREFORKD_SPDLOG_FACTORIES(async_factory)
#undef PREFORKD_SPDLOG_FACTORIES

}  // namespace spdlog
