#!/usr/bin/env bash
# Builds the bench (Release, its own build directory) and runs it. Arguments go to
# bench_supervisor (--quick, --duration S, --idle S, --children in-process|exec, ...).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PREFORKD_BENCH_BUILD:-$root/build-bench}

if ! perl -MParallel::Prefork -e1 2>/dev/null; then
  echo "run.sh: Parallel::Prefork is missing: apt-get install -y libparallel-prefork-perl" >&2
  exit 1
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPREFORKD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target bench_supervisor >/dev/null
exec "$build/bench/bench_supervisor" "$@"
