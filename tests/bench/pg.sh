#!/usr/bin/env bash
# Clinic chains' benchmark (issue 13): OpenCartridge on SQLite, on PostgreSQL with one server, and
# with two servers on one PostgreSQL database, in one run on one machine:
#
#   tests/bench/pg.sh [--duration S] [--in-flight N] [--units N] [--dir DIR] [--out FILE]
#                     [--build DIR]
#
# Builds the server and the load client in Release (build/bench, as run.sh), starts a throwaway
# PostgreSQL 15 cluster (tests/pg/cluster.sh: unix socket, fsync on, the distribution's defaults
# otherwise), and for each of the three runs a fresh database and its server(s) on loopback, with
# an admin token made the documented way. The load client (steritrack_load) runs the closed loop
# of run.sh's "open": N calls in flight (default 64) on distinct units seeded first; with two
# servers its connections alternate between them. Each run seeds --units units first (default
# 30,000; receipt on PostgreSQL is far slower than on SQLite, so the load client's own estimate
# would take minutes to seed): a run that opens them all before its time is up says so. Prints throughput, p50 and p99 per run and
# writes them to FILE (default bench-pg.json). Benchmarks, not tests: nothing is asserted about
# speed; a run is marked invalid if a call failed or a sampled acknowledged open is not stored.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

DURATION=10
WARMUP=2
IN_FLIGHT=64
UNITS=30000
BUILD=build/bench
OUT=bench-pg.json
DIR=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=$2; shift ;;
    --in-flight) IN_FLIGHT=$2; shift ;;
    --units) UNITS=$2; shift ;;
    --dir) DIR=$2; shift ;;
    --out) OUT=$2; shift ;;
    --build) BUILD=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "pg.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

echo "== building Release in $BUILD" >&2
LAUNCHER=()
if command -v ccache >/dev/null; then LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTERITRACK_BUILD_TESTS=OFF \
    -DSTERITRACK_BUILD_BENCH=ON "${LAUNCHER[@]}" >/dev/null
fi
cmake --build "$BUILD" -j2 --target steritrackd steritrack_load >&2
STERITRACKD=$ROOT/$BUILD/server/steritrackd
LOAD_BIN=$ROOT/$BUILD/tests/bench/steritrack_load

if [[ -z "$DIR" ]]; then
  mkdir -p "$BUILD/runs"
  DIR=$(mktemp -d "$ROOT/$BUILD/runs/pg.XXXXXX")
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
# The cluster's folder is under /tmp, which the postgres user can reach wherever the tree is.
PGDIR=$(mktemp -d /tmp/steritrack-bench-pg.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  tests/pg/cluster.sh stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$PGDIR" "$DIR"/*.db*
}
trap cleanup EXIT
echo "== PostgreSQL cluster in $PGDIR" >&2
BASE=$(tests/pg/cluster.sh start "$PGDIR" 5497)

# Starts steritrackd on the database $1 (a file or a URL), its log $DIR/$2.log; appends its pid to
# PIDS and sets PORT.
start_server() {
  local db=$1 name=$2 log="$DIR/$2.log"
  "$STERITRACKD" --db "$db" --listen 127.0.0.1:0 --max-queued-writes 1024 >"$log" 2>&1 &
  PIDS+=($!)
  PORT=""
  for _ in $(seq 100); do
    PORT=$(grep -o 'listening on [^ ]* (port [0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$' || true)
    [[ -n "$PORT" ]] && break
    sleep 0.1
  done
  [[ -n "$PORT" ]] || { echo "pg.sh: steritrackd did not start:" >&2; cat "$log" >&2; exit 1; }
}
stop_servers() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
new_pg_database() {
  psql "$BASE" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $1" >&2
  echo "${BASE/\/postgres\?//$1?}"
}
# Runs the closed loop against the servers $1 (comma-separated) with the token of database $2.
measure() {
  local servers=$1 db=$2 name=$3
  "$STERITRACKD" token create --db "$db" --name bench --role admin >"$DIR/$name.token"
  echo "== $name: open, $IN_FLIGHT in flight, on $servers" >&2
  "$LOAD_BIN" --server "$servers" --token-file "$DIR/$name.token" --duration "$DURATION" \
    --warmup "$WARMUP" --units "$UNITS" --method open --mode closed --in-flight "$IN_FLIGHT" \
    --json "$DIR/$name.json" || STATUS=1
}

STATUS=0
start_server "$DIR/bench.db" sqlite
measure "127.0.0.1:$PORT" "$DIR/bench.db" sqlite
stop_servers

ONE=$(new_pg_database bench_one)
start_server "$ONE" pg_one
measure "127.0.0.1:$PORT" "$ONE" pg_one
stop_servers

TWO=$(new_pg_database bench_two)
start_server "$TWO" pg_two_a
FIRST=$PORT
start_server "$TWO" pg_two_b
measure "127.0.0.1:$FIRST,127.0.0.1:$PORT" "$TWO" pg_two
stop_servers

python3 - "$DIR" "$OUT" "$DURATION" "$IN_FLIGHT" <<'PY'
import datetime, json, os, platform, sys
d, out, duration, in_flight = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
runs = {}
for name, label in (("sqlite", "SQLite, one server"), ("pg_one", "PostgreSQL 15, one server"),
                    ("pg_two", "PostgreSQL 15, two servers on one database")):
    with open(os.path.join(d, name + ".json")) as f:
        r = json.load(f)
    runs[name] = {"label": label, "throughput_per_s": r["throughput_per_s"],
                  "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"],
                  "completed": r["completed"], "failed": r["failed"], "valid": r["valid"],
                  "ran_out_of_units": r.get("ran_out_of_units", False)}
result = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "host": platform.node(), "cpus": os.cpu_count(), "duration_s": duration,
          "in_flight": in_flight, "runs": runs}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
print(f"OpenCartridge, closed loop, {in_flight} in flight, {duration:.0f} s each ({os.cpu_count()} CPUs)")
print(f"{'run':46} {'opens/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'valid':>6}")
for r in runs.values():
    note = "  (opened every seeded unit early)" if r["ran_out_of_units"] else ""
    print(f"{r['label']:46} {r['throughput_per_s']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
          f"{str(r['valid']):>6}{note}")
print(f"(written to {out})")
PY
exit $STATUS
