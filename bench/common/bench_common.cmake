# What the three job benchmark drivers (bench/jobs, bench/redis, bench/postgres) share:
# the bench_common library (processes by pid, temp dirs, polling, statistics, the
# latency protocol) and add_bench_driver(). Each of the three includes this file; the
# first one defines it.
include_guard(GLOBAL)

add_library(bench_common STATIC
  ${CMAKE_CURRENT_LIST_DIR}/program.cpp
  ${CMAKE_CURRENT_LIST_DIR}/options.cpp
  ${CMAKE_CURRENT_LIST_DIR}/timing.cpp
  ${CMAKE_CURRENT_LIST_DIR}/files.cpp
  ${CMAKE_CURRENT_LIST_DIR}/processes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/polling.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu_time.cpp
  ${CMAKE_CURRENT_LIST_DIR}/servers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stats.cpp
  ${CMAKE_CURRENT_LIST_DIR}/report.cpp
  ${CMAKE_CURRENT_LIST_DIR}/latency.cpp)
# Included as "common/processes.hpp".
cmake_path(GET CMAKE_CURRENT_LIST_DIR PARENT_PATH bench_dir)
target_include_directories(bench_common PUBLIC ${bench_dir})
# latency.cpp enqueues through preforkd::JobSource, a virtual call: the header is all it
# needs. The drivers link preforkd_lib themselves.
target_include_directories(bench_common PRIVATE ${CMAKE_SOURCE_DIR}/include)

# add_bench_driver(TARGET DIR_DEFINE): TARGET from driver.cpp in the calling folder,
# with bench_common and libpreforkd, and the paths of what it starts compiled in:
# preforkd, preforkctl, bench/jobs' no-op handlers, and (as DIR_DEFINE) the calling
# folder with its peer scripts.
function(add_bench_driver target dir_define)
  add_executable(${target} ${CMAKE_CURRENT_SOURCE_DIR}/driver.cpp)
  target_link_libraries(${target} PRIVATE bench_common preforkd_lib)
  # BUILD_DIR/bench/<folder>/, where run.sh looks for it.
  set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  target_compile_definitions(${target} PRIVATE
    BENCH_PREFORKD="$<TARGET_FILE:preforkd>"
    BENCH_PREFORKCTL="$<TARGET_FILE:preforkctl>"
    BENCH_INPROC="$<TARGET_FILE:bench_jobs_inproc>"
    BENCH_PERSISTENT="$<TARGET_FILE:bench_jobs_persistent>"
    ${dir_define}="${CMAKE_CURRENT_SOURCE_DIR}")
  add_dependencies(${target} preforkd preforkctl bench_jobs_inproc bench_jobs_persistent)
endfunction()
