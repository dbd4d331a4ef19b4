#!/usr/bin/env bash
# The jobs benchmark in one command. It builds nothing: build the targets first with
#
#   cmake -S . -B build-benchjobs -DCMAKE_BUILD_TYPE=Release -DPREFORKD_TESTS=OFF
#   cmake --build build-benchjobs -j2 --target bench_jobs
#
# then run (from the repository root):
#
#   bench/jobs/run.sh [BUILD_DIR] [bench_jobs options]
#
# BUILD_DIR defaults to $PREFORKD_BENCH_BUILD, else build-benchjobs. Options go to
# bench_jobs: --jobs N (20000), --schwartz-jobs N (2000), --latency-jobs N (300),
# --latency-gap-ms MS (5), --repeat R (1; the median is shown), --quick, --keep.
# The whole run is bounded: bench_jobs has a deadline per step, and this script stops it
# (by pid; everything it started dies with it) after 30 minutes.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PREFORKD_BENCH_BUILD:-$root/build-benchjobs}
if [[ $# -gt 0 && $1 != -* ]]; then build=$1; shift; fi
[[ $build = /* ]] || build=$PWD/$build

bench=$build/bench/jobs/bench_jobs
if [[ ! -x $bench ]]; then
  echo "run.sh: $bench is missing; build it first:" >&2
  echo "  cmake -S $root -B $build -DCMAKE_BUILD_TYPE=Release -DPREFORKD_TESTS=OFF" >&2
  echo "  cmake --build $build -j2 --target bench_jobs" >&2
  exit 1
fi
if ! perl -MTheSchwartz -MDBD::SQLite -e1 2>/dev/null; then
  echo "run.sh: TheSchwartz or DBD::SQLite is missing:" >&2
  echo "  apt-get install -y libtheschwartz-perl libdbd-sqlite3-perl" >&2
  exit 1
fi

# --foreground: the TERM goes to bench_jobs by pid (it then kills what it started, which
# also dies with it through PR_SET_PDEATHSIG); Ctrl-C still reaches it from a terminal.
exec timeout --foreground --kill-after=30s 30m "$bench" "$@"
