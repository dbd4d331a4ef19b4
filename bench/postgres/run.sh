#!/usr/bin/env bash
# The PostgreSQL benchmark in one command (from the repository root):
#
#   bench/postgres/run.sh [BUILD_DIR] [bench_postgres options]
#
# BUILD_DIR defaults to $PREFORKD_BENCH_BUILD, else build-benchpg. The script
#   - installs graphile-worker into bench/postgres/node_modules (npm install --no-audit
#     --no-fund) if it is missing,
#   - checks PostgreSQL's server binaries (initdb, postgres), node, npm, cmake,
#   - configures BUILD_DIR if needed (Release, no tests) and builds bench_postgres with -j2
#     (nothing to do when it is up to date),
#   - runs bench_postgres, which runs initdb into a temp dir under /tmp, starts its own
#     PostgreSQL on 127.0.0.1 (free port, no Unix socket, fsync/synchronous_commit/
#     full_page_writes off; as the postgres user when run as root) and stops it at the end.
# Options go to bench_postgres: --jobs N (20000), --latency-jobs N (300), --latency-gap-ms MS
# (5), --repeat R (1; the median is shown), --only in_process,persistent,graphile,graphile10,
# raw,latency, --quick, --keep (keeps the temp dirs).
# The whole run is bounded: bench_postgres has a deadline per step, and this script stops
# it (by pid; everything it started dies with it) after 30 minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${PREFORKD_BENCH_BUILD:-$root/build-benchpg}
if [[ $# -gt 0 && $1 != -* ]]; then build=$1; shift; fi
[[ $build = /* ]] || build=$PWD/$build

missing=()
for tool in node npm cmake; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
pg_bin=${BENCH_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[[ -n $pg_bin && -x $pg_bin/initdb && -x $pg_bin/postgres ]] || missing+=("postgresql (initdb, postgres)")
if ((${#missing[@]})); then
  echo "run.sh: missing: ${missing[*]}" >&2
  echo "  apt-get install -y postgresql nodejs npm cmake" >&2
  exit 1
fi
if [[ ! -f $here/node_modules/graphile-worker/package.json || ! -f $here/node_modules/pg/package.json ]]; then
  echo "run.sh: installing graphile-worker into $here/node_modules" >&2
  (cd "$here" && timeout 600 npm install --no-audit --no-fund >&2)
fi

if ! grep -qs bench_postgres.dir "$build/CMakeFiles/TargetDirectories.txt"; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPREFORKD_TESTS=OFF >&2
fi
cmake --build "$build" -j2 --target bench_postgres >&2

# --foreground: the TERM goes to bench_postgres by pid (it then kills what it started, which
# also dies with it through PR_SET_PDEATHSIG); Ctrl-C still reaches it from a terminal.
exec timeout --foreground --kill-after=30s 30m "$build/bench/postgres/bench_postgres" "$@"
