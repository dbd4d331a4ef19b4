#!/usr/bin/env bash
# The Redis benchmark in one command (from the repository root):
#
#   bench/redis/run.sh [BUILD_DIR] [bench_redis options]
#
# BUILD_DIR defaults to $PREFORKD_BENCH_BUILD, else build-benchredis. The script
#   - installs BullMQ into bench/redis/node_modules (npm install --no-audit --no-fund) if
#     it is missing,
#   - checks redis-server, redis-benchmark, node, ruby + Sidekiq (Debian ruby-sidekiq),
#   - configures BUILD_DIR if needed (Release, no tests) and builds bench_redis with -j2
#     (nothing to do when it is up to date),
#   - runs bench_redis, which starts its own redis-server on 127.0.0.1 (free port, temp
#     dir under /tmp, --save '' --appendonly no) and stops it at the end.
# Options go to bench_redis: --jobs N (20000), --latency-jobs N (300), --latency-gap-ms MS
# (5), --repeat R (1; the median is shown), --only in_process,persistent,bullmq,sidekiq,
# benchmark,latency, --quick, --keep (keeps the temp dirs).
# The whole run is bounded: bench_redis has a deadline per step, and this script stops it
# (by pid; everything it started dies with it) after 30 minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${PREFORKD_BENCH_BUILD:-$root/build-benchredis}
if [[ $# -gt 0 && $1 != -* ]]; then build=$1; shift; fi
[[ $build = /* ]] || build=$PWD/$build

missing=()
for tool in redis-server redis-benchmark node npm ruby sidekiq cmake; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "run.sh: missing: ${missing[*]}" >&2
  echo "  apt-get install -y redis-server redis-tools nodejs npm ruby-sidekiq cmake" >&2
  exit 1
fi
if ! ruby -e 'require "sidekiq"' 2>/dev/null; then
  echo "run.sh: the sidekiq gem does not load: apt-get install -y ruby-sidekiq" >&2
  exit 1
fi
if [[ ! -f $here/node_modules/bullmq/package.json || ! -f $here/node_modules/ioredis/package.json ]]; then
  echo "run.sh: installing BullMQ into $here/node_modules" >&2
  (cd "$here" && timeout 600 npm install --no-audit --no-fund >&2)
fi

if ! grep -qs bench_redis.dir "$build/CMakeFiles/TargetDirectories.txt"; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPREFORKD_TESTS=OFF >&2
fi
cmake --build "$build" -j2 --target bench_redis >&2

# --foreground: the TERM goes to bench_redis by pid (it then kills what it started, which
# also dies with it through PR_SET_PDEATHSIG); Ctrl-C still reaches it from a terminal.
exec timeout --foreground --kill-after=30s 30m "$build/bench/redis/bench_redis" "$@"
