#!/usr/bin/env bash
# The benchmark suite (issue 11), one command, after the README set-up (deploy/install-deps.sh):
#
#   tests/bench/run.sh [--long] [--duration S] [--rate N] [--dir DIR] [--out FILE] [--build DIR]
#                      [--big-treatments N] [--big-months M] [--no-big]
#
# Builds the server and the bench tools in Release (build/bench, reused when it exists), starts its
# own steritrackd on a fresh database in a temporary directory (loopback, any free port) with an
# admin token, and measures, each figure within this one run:
#   physical  4 KiB write + fdatasync/s in the same directory (steritrack_fsync_bench); and its
#             latency at --rate right after the open loop, a reference for R5 (the disk's own
#             tail at that rate; not a bound, since group commit shares a sync among opens)
#   storage   SQLite WAL + synchronous=FULL: single-row commits/s, rows/s in batches of 100
#             (steritrack_sqlite_bench, on the server writer's VFS, which gathers a commit's WAL
#             writes into one call: server/storage/wal_vfs.h), same directory
#   transport grpc.health.v1 Health/Check on the server: 64 in flight; open loop at --rate
#   open      OpenCartridge on distinct units (seeded before the timed part): 64 in flight;
#             open loop at --rate (latency from each call's intended send time)
#   open, no group commit: the same closed loop on a second server started with
#             --group-commit=false on a fresh database, then on a third with it on again
#             (R4 = the mean of the two batched runs / the unbatched one)
#   peer      the same closed loop on the Python peer (tests/bench/peer_server.py: what a clinic
#             might write instead, same protos and open semantics, SQLite WAL + FULL, one
#             transaction per request), seeded by the same client through its own RPCs
#             (R7 = the mean of the two batched steritrack runs / the peer); needs Debian's
#             python3-grpcio and python3-protobuf and protoc, else R7 is left out (said so)
# The baselines run again after the server's measurements (the machine is shared and its disk
# drifts): both are kept, the ratios use their mean.
#   at scale  R8, R9 and the server's peak RSS: tests/bench/big.sh on a generated database of
#             --big-treatments over --big-months (default 280,000 in one month: the issue's
#             month of ~280k treatments, generated once in about a minute and reused), with the
#             same --duration and --rate; its figures go into the same table and file. The
#             issue's full size: --big-treatments 10000000 --big-months 36 (~35 minutes to
#             generate the first time, ~23 GB). --no-big leaves it out.
# Then it prints one table and writes bench-results.json (every figure and the ratios). Default:
# 10 s per measurement (2 s warm-up), about 9 minutes in all once built (5 with --no-big); --long:
# 60 s each. Benchmarks, not tests: nothing is asserted about speed. A run is marked invalid if any call failed (other than the
# server's RESOURCE_EXHAUSTED overload refusal, counted apart) or a sampled acknowledged open is not
# stored.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

DURATION=10
WARMUP=2
RATE=1000
IN_FLIGHT=64
BUILD=build/bench
OUT=bench-results.json
DIR=""
BIG_TREATMENTS=280000
BIG_MONTHS=1
BIG=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --long) DURATION=60; WARMUP=5 ;;
    --duration) DURATION=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --dir) DIR=$2; shift ;;
    --out) OUT=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --big-treatments) BIG_TREATMENTS=$2; shift ;;
    --big-months) BIG_MONTHS=$2; shift ;;
    --no-big) BIG=0 ;;
    -h|--help) awk 'NR > 1 && /^set -euo/ {exit} NR > 1' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
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
cmake --build "$BUILD" -j2 --target steritrackd steritrack_load steritrack_sqlite_bench \
  steritrack_fsync_bench >&2
STERITRACKD=$ROOT/$BUILD/server/steritrackd
BIN=$ROOT/$BUILD/tests/bench

if [[ -z "$DIR" ]]; then
  mkdir -p "$BUILD/runs"
  DIR=$(mktemp -d "$ROOT/$BUILD/runs/run.XXXXXX")
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -f "$DIR"/steritrack*.db* "$DIR"/peer*.db* "$DIR"/*.dat "$DIR"/sqlite-bench.db*
}
trap cleanup EXIT

echo "== physical and storage baselines in $DIR" >&2
"$BIN/steritrack_fsync_bench" --dir "$DIR" --duration "$DURATION" --json "$DIR/fsync.json"
"$BIN/steritrack_sqlite_bench" --dir "$DIR" --duration "$DURATION" --batch 100 \
  --json "$DIR/sqlite.json"

# Starts steritrackd on a fresh database $DIR/$1 with the further flags given; sets SERVER_PID,
# PORT and LOAD (the load client's command for it, with an admin token).
start_server() {
  local db=$1; shift
  local log="$DIR/steritrackd-${db%.db}.log"
  echo "== starting steritrackd on $DIR/$db $*" >&2
  # --max-queued-writes above the 64 calls in flight, so no call is refused SERVER_BUSY.
  # Default logging (info), as shipped.
  "$STERITRACKD" --db "$DIR/$db" --listen 127.0.0.1:0 --max-queued-writes 1024 "$@" \
    >"$log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 100); do
    PORT=$(grep -o 'listening on [^ ]* (port [0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$' || true)
    [[ -n "$PORT" ]] && break
    sleep 0.1
  done
  [[ -n "$PORT" ]] || { echo "run.sh: steritrackd did not start:" >&2; cat "$log" >&2; exit 1; }
  "$STERITRACKD" token create --db "$DIR/$db" --name bench --role admin >"$DIR/$db.token"
  LOAD=("$BIN/steritrack_load" --server "127.0.0.1:$PORT" --token-file "$DIR/$db.token"
        --duration "$DURATION" --warmup "$WARMUP")
}
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

start_server steritrack.db
STATUS=0
echo "== transport and open, $IN_FLIGHT in flight and $RATE/s open loop" >&2
"${LOAD[@]}" --method health --mode closed --in-flight "$IN_FLIGHT" --json "$DIR/health_closed.json" || STATUS=1
"${LOAD[@]}" --method open --mode closed --in-flight "$IN_FLIGHT" --json "$DIR/open_closed.json" || STATUS=1
"${LOAD[@]}" --method health --mode open --rate "$RATE" --json "$DIR/health_open.json" || STATUS=1
"${LOAD[@]}" --method open --mode open --rate "$RATE" --json "$DIR/open_open.json" || STATUS=1
"$BIN/steritrack_fsync_bench" --dir "$DIR" --duration "$DURATION" --rate "$RATE" \
  --json "$DIR/fsync_open_loop.json" || STATUS=1
# The same closed loop with clinic-shaped treatments: one started per two units, in the order the
# units are opened (above, every unit goes into one of 16 treatments, so each batch inserts at 16
# places of the per-treatment indexes). Reported beside R1, not instead of it.
echo "== open, $IN_FLIGHT in flight, a treatment per two units" >&2
"${LOAD[@]}" --method open --mode closed --in-flight "$IN_FLIGHT" --units-per-treatment 2 \
  --json "$DIR/open_closed_clinic.json" || STATUS=1
stop_server

# R4: the same closed-loop open on a second server, on a fresh database, with group commit off
# (one fsync'd COMMIT per write, as before issue 11), then with it on again on a third: the disk's
# speed drifts, so the batched figure R4 uses is the mean of the two that bracket the unbatched one.
start_server steritrack-unbatched.db --group-commit=false
echo "== open without group commit, $IN_FLIGHT in flight" >&2
"${LOAD[@]}" --method open --mode closed --in-flight "$IN_FLIGHT" --json "$DIR/open_closed_unbatched.json" || STATUS=1
stop_server
start_server steritrack-batched.db
echo "== open with group commit again, $IN_FLIGHT in flight" >&2
"${LOAD[@]}" --method open --mode closed --in-flight "$IN_FLIGHT" --json "$DIR/open_closed_again.json" || STATUS=1
stop_server

# R7: the Python peer, on the same client at the same concurrency. It runs on Debian's python3
# (python3-grpcio, python3-protobuf: nothing from pip), found as the first interpreter that has them.
PEER_PYTHON=""
for candidate in /usr/bin/python3 python3; do
  if "$candidate" -c 'import grpc, google.protobuf' 2>/dev/null && command -v protoc >/dev/null; then
    PEER_PYTHON=$candidate
    break
  fi
done
if [[ -n "$PEER_PYTHON" ]]; then
  echo "== the Python peer, open, $IN_FLIGHT in flight" >&2
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/peer.token"
  "$PEER_PYTHON" tests/bench/peer_server.py --db "$DIR/peer.db" --listen 127.0.0.1:0 \
    --token-file "$DIR/peer.token" >"$DIR/peer.log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 100); do
    PORT=$(grep -o 'listening on [^ ]* (port [0-9]*' "$DIR/peer.log" 2>/dev/null | grep -o '[0-9]*$' || true)
    [[ -n "$PORT" ]] && break
    sleep 0.1
  done
  [[ -n "$PORT" ]] || { echo "run.sh: the peer did not start:" >&2; cat "$DIR/peer.log" >&2; exit 1; }
  # Units for up to 5,000 opens/s (the client stops early, saying so, if the peer is faster).
  "$BIN/steritrack_load" --server "127.0.0.1:$PORT" --token-file "$DIR/peer.token" \
    --duration "$DURATION" --warmup "$WARMUP" --units $((5000 * (DURATION + WARMUP))) \
    --method open --mode closed --in-flight "$IN_FLIGHT" --json "$DIR/open_closed_peer.json" || STATUS=1
  stop_server
else
  echo "== no Python with grpc and protobuf (Debian python3-grpcio, python3-protobuf) or no protoc: R7 left out" >&2
fi

# The machine is shared and its disk's speed drifts: the baselines again, after the server's run.
echo "== physical and storage baselines again" >&2
"$BIN/steritrack_fsync_bench" --dir "$DIR" --duration "$DURATION" --json "$DIR/fsync_after.json"
"$BIN/steritrack_sqlite_bench" --dir "$DIR" --duration "$DURATION" --batch 100 \
  --json "$DIR/sqlite_after.json"

# R8, R9 and the peak RSS at scale, by big.sh (its own server on its generated database); its
# table goes to $DIR/big.txt, its figures into this run's table and file below.
rm -f "$DIR/big.json"
if [[ "$BIG" == 1 ]]; then
  echo "== at scale: tests/bench/big.sh --treatments $BIG_TREATMENTS --months $BIG_MONTHS" >&2
  "$ROOT/tests/bench/big.sh" --treatments "$BIG_TREATMENTS" --months "$BIG_MONTHS" \
    --duration "$DURATION" --rate "$RATE" --build "$BUILD" --out "$DIR/big.json" \
    >"$DIR/big.txt" || STATUS=1
fi

python3 - "$DIR" "$OUT" "$DURATION" "$RATE" "$IN_FLIGHT" "$BIG" <<'PY'
import datetime, json, os, platform, subprocess, sys
d, out, duration, rate, in_flight = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
big_wanted = sys.argv[6] == "1"
def load(name):
    try:
        with open(os.path.join(d, name + ".json")) as f:
            figures = json.load(f)
        figures.pop("histogram_ns", None)  # the buckets big.sh pools; not kept here
        return figures
    except (OSError, ValueError) as e:
        # Its client ended without figures (a failed call, a server that went away: above).
        print(f"run INVALID: the measurement {name!r} left no figures ({e}); see the messages above")
        sys.exit(1)
fsync_before, sqlite_before = load("fsync"), load("sqlite")
fsync_after, sqlite_after = load("fsync_after"), load("sqlite_after")
def mean(a, b):
    # The baselines taken before and after the server's run, averaged; both are kept.
    m = {k: round((a[k] + b[k]) / 2, 1) if isinstance(a[k], float) else a[k] for k in a}
    return m
fsync, sqlite = mean(fsync_before, fsync_after), mean(sqlite_before, sqlite_after)
hc, oc, ho, oo = (load(n) for n in ("health_closed", "open_closed", "health_open", "open_open"))
ocu, oc2 = load("open_closed_unbatched"), load("open_closed_again")
ocl = load("open_closed_clinic")
# The disk's sync latency at the open loop's rate: a reference, reported if it was measured.
fo = load("fsync_open_loop") if os.path.exists(os.path.join(d, "fsync_open_loop.json")) else None
peer = load("open_closed_peer") if os.path.exists(os.path.join(d, "open_closed_peer.json")) else None
batched_mean = (oc["throughput_per_s"] + oc2["throughput_per_s"]) / 2
def ratio(a, b):
    return round(a / b, 4) if b else None
ratios = {
    "R1_open_over_health_throughput_64_in_flight": ratio(oc["throughput_per_s"], hc["throughput_per_s"]),
    "R1_clinic_treatments_open_over_health_throughput_64_in_flight": ratio(ocl["throughput_per_s"], hc["throughput_per_s"]),
    "R4_open_batched_over_unbatched_64_in_flight": ratio(batched_mean, ocu["throughput_per_s"]),
    "R3_sqlite_single_commits_over_fdatasync": ratio(sqlite["single_commits_per_s"], fsync["fdatasync_per_s"]),
    "R5_open_p99_ms_at_rate": oo["latency_ms"]["p99"],
    "R5_open_p99_over_health_p99_at_rate": ratio(oo["latency_ms"]["p99"], ho["latency_ms"]["p99"]),
    "R5_reference_disk_sync_p99_ms_at_rate": fo["latency_ms"]["p99"] if fo else None,
    "R5_reference_disk_sync_p99_over_health_p99_at_rate": ratio(fo["latency_ms"]["p99"], ho["latency_ms"]["p99"]) if fo else None,
    "R7_open_over_python_peer_64_in_flight": ratio(batched_mean, peer["throughput_per_s"]) if peer else None,
    "open_throughput_over_fdatasync": ratio(oc["throughput_per_s"], fsync["fdatasync_per_s"]),
    "open_throughput_over_sqlite_single_commits": ratio(oc["throughput_per_s"], sqlite["single_commits_per_s"]),
    "open_throughput_over_sqlite_batched_rows": ratio(oc["throughput_per_s"], sqlite["batched_rows_per_s"]),
}
# At scale (big.sh): R8, R9 and the peak RSS, when they were asked for.
big = None
if big_wanted:
    try:
        with open(os.path.join(d, "big.json")) as f:
            big = json.load(f)
    except (OSError, ValueError) as e:
        print(f"run INVALID: big.sh left no figures ({e}); see {os.path.join(d, 'big.txt')} and the messages above")
        sys.exit(1)
if big:
    ratios.update({
        "at_scale_treatments": big["treatments"],
        "R8_history_p99_ms": big["R8"]["history_p99_ms"],
        "R8_lot_look_back_p99_ms": big["R8"]["lot_look_back_p99_ms"],
        "R8_month_report_s": big["R8"]["month_report_s"],
        "R8_incremental_audit_verify_s": big["R8"]["incremental_verify_s"],
        "R9_open_p99_with_report_loop_over_alone": big["R9_open_p99_with_report_loop_over_alone"],
        "server_peak_rss_mb_at_scale": big["server_peak_rss_mb"],
    })
valid = all(r["valid"] for r in (hc, oc, ho, oo, ocu, oc2, ocl) + ((peer,) if peer else ())) and \
    (big is None or big["valid"])
overloaded = [n for n, r in (("health_open_loop", ho), ("open_open_loop", oo))
              if r.get("refused", 0) or r["throughput_per_s"] < 0.95 * rate]
try:
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
except OSError:
    commit = ""
result = {
    "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": commit,
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "machine": platform.machine()},
    "settings": {"duration_s": duration, "rate_per_s": rate, "in_flight": in_flight},
    "physical": {"mean": fsync, "before": fsync_before, "after": fsync_after, "at_rate": fo},
    "storage": {"mean": sqlite, "before": sqlite_before, "after": sqlite_after},
    "health_closed": hc, "open_closed": oc, "health_open_loop": ho, "open_open_loop": oo,
    "open_closed_unbatched": ocu, "open_closed_again": oc2, "open_closed_clinic_treatments": ocl, "open_closed_python_peer": peer,
    "at_scale": big,
    "ratios": ratios,
    "valid": valid,
    "open_loop_overloaded": overloaded,
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")

def row(name, r):
    l = r["latency_ms"]
    load_ = f"{r['in_flight']} in flight" if r["mode"] == "closed" else f"{r['rate']:.0f}/s open loop"
    return (f"| {name:<14} | {load_:<18} | {r['throughput_per_s']:>9.0f} | {l['p50']:>7.3f} | {l['p90']:>7.3f} | "
            f"{l['p99']:>7.3f} | {l['p999']:>7.3f} | {l['max']:>8.3f} | {r.get('refused', 0):>7} | {r['failed']:>6} |")
print()
print(f"steritrack benchmarks, {result['when']}, commit {commit}, {os.cpu_count()} CPUs, {duration:.0f} s per measurement")
print()
print("| baseline (before and after the server's run) | before | after | mean |")
print("|---|---:|---:|---:|")
def base(name, key, unit):
    print(f"| {name} | {BEFORE[key]:,.0f} | {AFTER[key]:,.0f} | {MEAN[key]:,.0f} {unit} |")
BEFORE, AFTER, MEAN = fsync_before, fsync_after, fsync
base(f"4 KiB write + fdatasync ({fsync['mode']})", "fdatasync_per_s", "/s")
BEFORE, AFTER, MEAN = sqlite_before, sqlite_after, sqlite
base(f"SQLite WAL, synchronous=FULL, single-row commits (VFS {sqlite.get('vfs', 'unix')})", "single_commits_per_s", "/s")
base(f"SQLite, batches of {sqlite['batch']}: rows", "batched_rows_per_s", "rows/s")
base(f"SQLite, batches of {sqlite['batch']}: commits", "batched_commits_per_s", "/s")
if fo:
    fl = fo["latency_ms"]
    print(f"| 4 KiB write + fdatasync at {fo['rate']:.0f}/s, after the open loop: latency ms | p50 {fl['p50']:.3f} | "
          f"p99 {fl['p99']:.3f} | p99.9 {fl['p999']:.3f} |")
else:
    print(f"| 4 KiB write + fdatasync at {rate:.0f}/s, after the open loop | not measured (see above) | | |")
print()
print("| call           | load               | calls/s   | p50 ms  | p90 ms  | p99 ms  | p99.9 ms| max ms   | refused | failed |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
print(row("health Check", hc))
print(row("open", oc))
print(row("open, 2/treatm.", ocl))
print(row("open, no group", ocu))
print(row("open, again", oc2))
if peer:
    print(row("open, Py peer", peer))
print(row("health Check", ho))
print(row("open", oo))
for name, r in (("health Check", ho), ("open", oo)):
    if r.get("refused", 0) or r["throughput_per_s"] < 0.95 * rate:
        print(f"note: {name} could not keep up with {rate:.0f}/s: {r['throughput_per_s']:.0f}/s answered OK, "
              f"{r.get('refused', 0)} refused RESOURCE_EXHAUSTED (overload); latencies are of the answered calls")
print()
print("| ratio | value | target (issue 11) |")
print("|---|---:|---|")
print(f"| R1 open / health Check throughput, {in_flight} in flight | {ratios['R1_open_over_health_throughput_64_in_flight']} | >= 0.40 |")
print(f"| R1 the same with a treatment per two units | {ratios['R1_clinic_treatments_open_over_health_throughput_64_in_flight']} | (beside R1) |")
print(f"| R4 open with (mean of the two runs around) / without group commit, {in_flight} in flight | {ratios['R4_open_batched_over_unbatched_64_in_flight']} | >= 5 |")
print(f"| R3 SQLite single-row commits/s / fdatasync/s | {ratios['R3_sqlite_single_commits_over_fdatasync']} | >= 0.8 |")
print(f"| R5 open p99 at {rate:.0f}/s open loop (ms) | {ratios['R5_open_p99_ms_at_rate']} | <= 2 ms |")
print(f"| R5 open p99 / health Check p99 at {rate:.0f}/s | {ratios['R5_open_p99_over_health_p99_at_rate']} | <= 3 |")
print(f"| reference: the disk's 4 KiB write + fdatasync p99 at {rate:.0f}/s (ms) | {ratios['R5_reference_disk_sync_p99_ms_at_rate']} | (beside R5) |")
print(f"| reference: that p99 / health Check p99 at {rate:.0f}/s | {ratios['R5_reference_disk_sync_p99_over_health_p99_at_rate']} | (beside R5) |")
r7 = ratios["R7_open_over_python_peer_64_in_flight"]
print(f"| R7 open (mean of the two batched runs) / Python peer open, {in_flight} in flight | "
      f"{r7 if r7 is not None else 'not measured (no python3-grpcio)'} | >= 8 |")
if big:
    reads, month = big["reads"], big["report_month"]
    size = f"{big['treatments']:,} treatments over {big['months']} month{'' if big['months'] == 1 else 's'}"
    print(f"| R8 at {size}: cartridge history p99, 1 at a time (ms) | {ratios['R8_history_p99_ms']:.3f} | < 0.5 ms at 10M |")
    print(f"| R8 lot look-back p99 ({reads['lot_look_back']['calls']} lots, ms) | {ratios['R8_lot_look_back_p99_ms']:.2f} | < 20 ms at 10M |")
    print(f"| R8 compliance report, {month} ({reads['report']['treatments']:,} treatments, s) | {ratios['R8_month_report_s']:.2f} | < 2 s at 10M |")
    print(f"| R8 incremental audit verify (s) | {ratios['R8_incremental_audit_verify_s']:.3f} | < 1 s at 10M |")
    print(f"| R9 open p99 at {rate:.0f}/s with the report in a loop / alone, {big['R9_rounds']} rounds pooled | "
          f"{ratios['R9_open_p99_with_report_loop_over_alone']} | <= 1.5 |")
    print(f"| server peak RSS at scale (MB) | {ratios['server_peak_rss_mb_at_scale']} | <= 150 MB at 10M |")
else:  # --no-big (a wanted part that left no figures ended the run above)
    print("| R8, R9, peak RSS | not measured (--no-big; tests/bench/big.sh) | |")
print(f"| open throughput / fdatasync/s | {ratios['open_throughput_over_fdatasync']} | |")
print(f"| open throughput / SQLite single-row commits/s | {ratios['open_throughput_over_sqlite_single_commits']} | |")
print(f"| open throughput / SQLite batched rows/s | {ratios['open_throughput_over_sqlite_batched_rows']} | |")
print()
print("run VALID: no call failed (overload refusals aside), every sampled acknowledged open is stored" if valid
      else "run INVALID: a call failed or an acknowledged open is missing (see above)")
if big:
    print(f"at scale: big.sh's own table, with the pages, references and COMMIT counts beside R8 and R9: {os.path.join(d, 'big.txt')}")
print(f"figures: {out}")
PY
exit $STATUS
