#!/usr/bin/env bash
# Headless Locust run against sandgraph (or the platform it replaces).
#
# Usage: locust-compatible/run_headless.sh HOST [SECONDS] [USERS] [SPAWN_RATE]
#   HOST        base URL (http://127.0.0.1:8000), or `local` to start a sandgraph here
#   SECONDS     run time (default 60)
#   USERS       concurrent simulated agents (default 10)
#   SPAWN_RATE  users started per second (default 2)
#
# Environment:
#   SANDGRAPH_TOKEN   bearer token for HOST (ignored with `local`, which makes its own)
#   OUT               output directory (default build/locust): locust_stats.csv,
#                     locust_failures.csv, locust_stats_history.csv, report.html,
#                     locust.log (Locust's console), server.log (local mode)
#   SANDGRAPH_BIN     binary for `local` (default target/release/sandgraph, else
#                     target/debug/sandgraph)
#   PYTHON            interpreter for the venv (default python3)
#   LOCUST_STOP_TIMEOUT  seconds running requests may finish at the end (default 30)
#   LOCUST_* / SANDGRAPH_TOKEN are read by locustfile.py (see README.md).
#
# Exits non-zero if Locust failed, no request was made, or any request failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
cd "$ROOT"

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
die() { printf 'run_headless.sh: error: %s\n' "$*" >&2; exit 1; }
[[ $# -ge 1 && $# -le 4 ]] || usage
[[ "$1" == -h || "$1" == --help ]] && usage

HOST="$1"
SECONDS_="${2:-60}"
USERS="${3:-10}"
SPAWN_RATE="${4:-2}"
for n in "$SECONDS_" "$USERS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "SECONDS and USERS must be positive integers, got '$n'"
done
[[ "$SPAWN_RATE" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SPAWN_RATE must be a number, got '$SPAWN_RATE'"

OUT="${OUT:-build/locust}"
VENV="build/locust-venv"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# 1. Locust in its own venv, reinstalled when requirements.txt changes.
stamp="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/locust" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "==> installing Locust into $VENV"
    [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
        -r "$HERE/requirements.txt"
    echo "$stamp" > "$VENV/.stamp"
fi

# 2. `local`: start a sandgraph with a throwaway data dir, a fresh admin token and
#    rate limits out of the way; stop it on every exit path.
SERVER_PID=""
DATA_DIR=""
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    [[ -n "$DATA_DIR" ]] && rm -rf "$DATA_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "$HOST" == local ]]; then
    BIN="${SANDGRAPH_BIN:-}"
    if [[ -z "$BIN" ]]; then
        for candidate in target/release/sandgraph target/debug/sandgraph; do
            [[ -x "$candidate" ]] && { BIN="$candidate"; break; }
        done
    fi
    [[ -n "$BIN" && -x "$BIN" ]] || die "no sandgraph binary: run 'make release' (or set SANDGRAPH_BIN)"
    [[ "$BIN" == *debug* ]] && echo "note: $BIN is a debug build; its latencies are not representative"
    [[ -f build/guest/BUILD_ID ]] || die "build/guest is not built: run 'make guest'"

    DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/sandgraph-locust.XXXXXX")"
    SANDGRAPH_TOKEN="$("$PYTHON" -c 'import secrets; print("sg-load-" + secrets.token_hex(24))')"
    export SANDGRAPH_TOKEN
    : > "$OUT/server.log"
    echo "==> starting $BIN (data dir $DATA_DIR, log $OUT/server.log)"
    SANDGRAPH_ADMIN_TOKEN="$SANDGRAPH_TOKEN" \
    SANDGRAPH_DATA_DIR="$DATA_DIR" \
    SANDGRAPH_GUEST_DIR="$ROOT/build/guest" \
    SANDGRAPH_COMPILED_CACHE_DIR="$ROOT/build/locust-compiled" \
    SANDGRAPH_RATE_LIMIT="${SANDGRAPH_RATE_LIMIT:-100000/second}" \
        "$BIN" serve --bind 127.0.0.1:0 > "$OUT/server.stdout" 2> "$OUT/server.log" &
    SERVER_PID=$!
    # The first start compiles the guests (cached in build/locust-compiled afterwards).
    for _ in $(seq 600); do
        HOST="$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$OUT/server.stdout" | head -n1)"
        [[ -n "$HOST" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$OUT/server.log" >&2; die "sandgraph exited at start-up"; }
        sleep 0.5
    done
    [[ -n "$HOST" ]] || { tail -n 20 "$OUT/server.log" >&2; die "sandgraph did not start within 300 s"; }
    echo "==> sandgraph at $HOST"
    # JavaScript is exercised too when the server is known to be sandgraph.
    export LOCUST_JS_RATIO="${LOCUST_JS_RATIO:-0.1}"
fi

# 3. The run.
rm -f "$OUT"/locust_*.csv
echo "==> locust: $USERS users, spawn rate $SPAWN_RATE/s, ${SECONDS_}s against $HOST"
set +e
(
    cd "$HERE"
    "$ROOT/$VENV/bin/locust" -f locustfile.py --headless -H "$HOST" \
        -u "$USERS" -r "$SPAWN_RATE" -t "${SECONDS_}s" \
        --stop-timeout "${LOCUST_STOP_TIMEOUT:-30}" \
        --csv "$OUT/locust" --html "$OUT/report.html" --only-summary \
        --loglevel WARNING
) > "$OUT/locust.log" 2>&1
locust_rc=$?
set -e
# Locust's own tables are in locust.log; show its notes and anything that went wrong.
grep -E '^(note:|.*(Error|Traceback|CRITICAL|exception))' "$OUT/locust.log" | head -n 20 || true
if [[ ! -f "$OUT/locust_stats.csv" ]]; then
    tail -n 30 "$OUT/locust.log" >&2
    die "locust wrote no $OUT/locust_stats.csv (exit $locust_rc)"
fi

# 4. Summary from locust_stats.csv (and the failures, if any).
summary_rc=0
"$ROOT/$VENV/bin/python" - "$OUT/locust_stats.csv" "$OUT/locust_failures.csv" <<'PY' || summary_rc=$?
import csv, os, sys

stats_path, failures_path = sys.argv[1], sys.argv[2]
with open(stats_path, newline="") as f:
    rows = list(csv.DictReader(f))

def ms(v):
    return "-" if v in ("", "N/A", None) else f"{float(v):.0f}"

print()
print(f"{'endpoint':<32} {'requests':>8} {'fails':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'req/s':>7}")
total = None
for row in rows:
    label = f"{row['Type']} {row['Name']}" if row["Name"] != "Aggregated" else "TOTAL"
    line = (f"{label:<32} {int(row['Request Count']):>8} {int(row['Failure Count']):>6} "
            f"{ms(row['50%']):>7} {ms(row['95%']):>7} {ms(row['99%']):>7} "
            f"{float(row['Requests/s']):>7.1f}")
    if row["Name"] == "Aggregated":
        total = row
        print("-" * 80)
    print(line)

if total is None or int(total["Request Count"]) == 0:
    print("\nno requests were made", file=sys.stderr)
    sys.exit(1)
failures = int(total["Failure Count"])
print(f"\nrequests {total['Request Count']}, failures {failures}")
if failures:
    if os.path.exists(failures_path):
        with open(failures_path, newline="") as f:
            for row in csv.DictReader(f):
                print(f"  {row['Occurrences']}x {row['Method']} {row['Name']}: {row['Error'][:200]}")
    sys.exit(1)
PY
echo "CSV, HTML report and logs in $OUT"
if (( locust_rc != 0 )); then
    echo "run_headless.sh: locust exited with $locust_rc" >&2
    exit "$locust_rc"
fi
exit "$summary_rc"
