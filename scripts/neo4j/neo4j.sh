#!/usr/bin/env bash
# A real Neo4j Community server for sandgraph's tests, with no Docker and no
# distribution tarball: Maven fetches the jars (scripts/neo4j/pom.xml) and the
# server class org.neo4j.server.CommunityEntryPoint runs in console mode in the
# background, on 127.0.0.1 only, with auth off unless NEO4J_PASSWORD is set.
#
#   scripts/neo4j/neo4j.sh fetch
#   scripts/neo4j/neo4j.sh start [--port N] [--http-port N] [--data DIR]
#   scripts/neo4j/neo4j.sh stop
#   scripts/neo4j/neo4j.sh status
#   scripts/neo4j/neo4j.sh restart [--port N] [--http-port N] [--data DIR]
#   scripts/neo4j/neo4j.sh run [--port N] [--http-port N] [--data DIR] -- CMD...
#
# Everything lives under build/neo4j (relative to the repo root):
#   lib/        the jars (re-fetched only when pom.xml changes)
#   conf/       neo4j.conf, written on every start
#   data/       databases and transaction logs (default; --data DIR overrides)
#   logs/       Neo4j's own debug.log etc.
#   neo4j.log   the server's console output
#   neo4j.pid   the java process id
#
# Environment: NEO4J_BOLT_PORT (default 7687), NEO4J_HTTP_PORT (default 7474;
# 0 turns HTTP off), NEO4J_HEAP (default 1g), NEO4J_PAGECACHE (default 256m),
# NEO4J_PASSWORD (turns auth on, user neo4j, with this initial password; at
# least 8 characters), NEO4J_JAVA (java binary; default: java on PATH, which
# must be 17 or 21), NEO4J_JAVA_OPTS (extra JVM flags), NEO4J_START_TIMEOUT (seconds, default 120),
# NEO4J_TX_TIMEOUT (db.transaction.timeout, default 10s).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/pom.xml"
BASE="$ROOT/build/neo4j"
LIB="$BASE/lib"
CONF_DIR="$BASE/conf"
LOG_DIR="$BASE/logs"
CONSOLE_LOG="$BASE/neo4j.log"
PID_FILE="$BASE/neo4j.pid"
STATE_FILE="$BASE/neo4j.state"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

BOLT_PORT="${NEO4J_BOLT_PORT:-7687}"
HTTP_PORT="${NEO4J_HTTP_PORT:-7474}"
DATA_DIR="$BASE/data"
HEAP="${NEO4J_HEAP:-1g}"
PAGECACHE="${NEO4J_PAGECACHE:-256m}"
START_TIMEOUT="${NEO4J_START_TIMEOUT:-120}"

log() { echo "neo4j.sh: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------- fetch ----

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

fetch() {
  local want
  want="$(pom_hash)"
  if [[ -f "$LIB/.stamp" && "$(cat "$LIB/.stamp")" == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: Maven is needed to fetch Neo4j"
  log "fetching Neo4j jars into build/neo4j/lib"
  mkdir -p "$BASE"
  rm -rf "$LIB.tmp"
  if ! mvn -q -B -f "$POM" "$DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$LIB.tmp" >"$BASE/fetch.log" 2>&1; then
    tail -n 40 "$BASE/fetch.log" >&2
    die "fetch failed (Maven output in build/neo4j/fetch.log)"
  fi
  ls "$LIB.tmp"/neo4j-[0-9]*.jar >/dev/null 2>&1 || die "fetch gave no neo4j jar"
  echo "$want" > "$LIB.tmp/.stamp"
  rm -rf "$LIB"
  mv "$LIB.tmp" "$LIB"
}

# ---------------------------------------------------------- java, bolt -----

java_bin() {
  local j="${NEO4J_JAVA:-java}" major
  command -v "$j" >/dev/null || die "java not found (set NEO4J_JAVA)"
  major="$("$j" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java\.specification\.version = //p')"
  case "$major" in
    17|21) ;;
    *) log "warning: Neo4j 5.26 supports Java 17 and 21; $j is Java $major" ;;
  esac
  echo "$j"
}

# Exit 0 when a Bolt server on 127.0.0.1:$1 completes the version handshake
# (magic 0x6060B017, four proposals; a non-zero version must come back).
bolt_ok() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
port = int(sys.argv[1])
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.settimeout(3)
    # 5.8 down to 5.0 (range 8), 4.4 down to 4.2 (range 2), 4.1, none
    s.sendall(bytes.fromhex("6060B017" "00080805" "00020404" "00000104" "00000000"))
    got = b""
    while len(got) < 4:
        chunk = s.recv(4 - len(got))
        if not chunk:
            break
        got += chunk
    s.close()
    sys.exit(0 if len(got) == 4 and got != b"\0\0\0\0" else 1)
except Exception:
    sys.exit(1)
PY
}

port_open() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except Exception:
    sys.exit(1)
PY
}

# Exit 0 while process $1 exists and is not a zombie.
proc_live() {
  local pid="$1" st
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r "/proc/$pid/stat" ]] || return 0
  st="$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
  [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# proc_live, and the process is our server (not a recycled pid).
alive() {
  proc_live "$1" || return 1
  [[ -r "/proc/$1/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q CommunityEntryPoint
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  echo "$pid"
}

state_get() { # key
  [[ -f "$STATE_FILE" ]] || return 0
  sed -n "s/^$1=//p" "$STATE_FILE"
}

# ------------------------------------------------------------- options -----

parse_opts() {
  REST=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) BOLT_PORT="${2:?--port needs a value}"; shift 2 ;;
      --port=*) BOLT_PORT="${1#*=}"; shift ;;
      --http-port) HTTP_PORT="${2:?--http-port needs a value}"; shift 2 ;;
      --http-port=*) HTTP_PORT="${1#*=}"; shift ;;
      --data) DATA_DIR="${2:?--data needs a value}"; shift 2 ;;
      --data=*) DATA_DIR="${1#*=}"; shift ;;
      --) shift; REST=("$@"); return 0 ;;
      *) die "unknown option: $1" ;;
    esac
  done
}

# Absolute path of directory $1 (created if missing); relative to the caller's cwd.
abs_path() { (cd "$CALLER_PWD" && mkdir -p "$1" && cd "$1" && pwd); }

# ---------------------------------------------------------------- start ----

write_conf() {
  mkdir -p "$CONF_DIR" "$LOG_DIR"
  local auth=false http_enabled=true http_port="$HTTP_PORT"
  if [[ -n "${NEO4J_PASSWORD:-}" ]]; then auth=true; fi
  if [[ "$HTTP_PORT" == 0 ]]; then http_enabled=false; http_port=7474; fi
  # Only keys Neo4j knows: it refuses to start on an unknown one.
  cat > "$CONF_DIR/neo4j.conf" <<EOF
# Written by scripts/neo4j/neo4j.sh on each start; edits are lost.
server.default_listen_address=127.0.0.1
server.default_advertised_address=127.0.0.1
server.bolt.enabled=true
server.bolt.listen_address=127.0.0.1:$BOLT_PORT
server.bolt.advertised_address=127.0.0.1:$BOLT_PORT
server.bolt.tls_level=DISABLED
server.http.enabled=$http_enabled
server.http.listen_address=127.0.0.1:$http_port
server.https.enabled=false
dbms.security.auth_enabled=$auth
server.memory.pagecache.size=$PAGECACHE
server.directories.data=$DATA_DIR
server.directories.logs=$LOG_DIR
server.directories.import=$BASE/import
server.directories.plugins=$BASE/plugins
dbms.usage_report.enabled=false
db.tx_log.preallocate=false
# Server-side backstop for runaway queries (neo4rs cannot set a per-transaction timeout).
db.transaction.timeout=${NEO4J_TX_TIMEOUT:-10s}
# How often Neo4j looks for transactions past their timeout (default 2s).
db.transaction.monitor.check.interval=500ms
# Bolt's Netty event loops otherwise idle 5 s each (10 s) before a stop ends.
internal.dbms.bolt.netty_server_shutdown_quiet_period=0
internal.dbms.bolt.netty_server_shutdown_timeout=5s
EOF
}

set_initial_password() {
  [[ -n "${NEO4J_PASSWORD:-}" ]] || return 0
  # Only takes effect before the first start on a data directory.
  [[ -f "$DATA_DIR/dbms/auth.ini" || -f "$DATA_DIR/databases/system/neostore" ]] && return 0
  NEO4J_HOME="$BASE" NEO4J_CONF="$CONF_DIR" \
    "$JAVA" -Xmx256m -cp "$LIB/*" org.neo4j.cli.AdminTool \
      dbms set-initial-password "$NEO4J_PASSWORD" >>"$CONSOLE_LOG" 2>&1 \
    || die "setting the initial password failed; see $CONSOLE_LOG"
}

start() {
  parse_opts "$@"
  [[ "$BOLT_PORT" =~ ^[0-9]+$ ]] || die "bad Bolt port: $BOLT_PORT"
  [[ "$HTTP_PORT" =~ ^[0-9]+$ ]] || die "bad HTTP port: $HTTP_PORT"
  DATA_DIR="$(abs_path "$DATA_DIR")"

  local pid
  if pid="$(running_pid)"; then
    if [[ "$(state_get port)" == "$BOLT_PORT" && "$(state_get data)" == "$DATA_DIR" ]] \
        && bolt_ok "$BOLT_PORT"; then
      echo "neo4j ready at bolt://127.0.0.1:$BOLT_PORT (already running, pid $pid)"
      return 0
    fi
    die "Neo4j already running (pid $pid, port $(state_get port), data $(state_get data)); stop it first"
  fi
  if port_open "$BOLT_PORT"; then
    die "port $BOLT_PORT is already in use by another process"
  fi
  if [[ "$HTTP_PORT" != 0 ]] && port_open "$HTTP_PORT"; then
    die "HTTP port $HTTP_PORT is already in use (use --http-port N, or 0 to turn HTTP off)"
  fi

  fetch
  JAVA="$(java_bin)"
  write_conf
  mkdir -p "$BASE/import" "$BASE/plugins"
  : > "$CONSOLE_LOG"
  set_initial_password

  # JVM flags from Neo4j's own launcher (server.jvm.additional defaults).
  local -a jvm=(
    -Xms256m "-Xmx$HEAP"
    -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow
    -XX:+UnlockExperimentalVMOptions -XX:+TrustFinalNonStaticFields
    -XX:+DisableExplicitGC
    -Djdk.nio.maxCachedBufferSize=1024
    -Dio.netty.tryReflectionSetAccessible=true
    -Dlog4j2.disable.jmx=true
    --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens=java.base/java.lang=ALL-UNNAMED
    -Dfile.encoding=UTF-8
  )
  # NEO4J_JAVA_OPTS: extra JVM flags, split on spaces.
  if [[ -n "${NEO4J_JAVA_OPTS:-}" ]]; then
    local -a extra
    read -r -a extra <<<"$NEO4J_JAVA_OPTS"
    jvm+=("${extra[@]}")
  fi
  local t0=$SECONDS
  NEO4J_HOME="$BASE" NEO4J_CONF="$CONF_DIR" \
    nohup "$JAVA" "${jvm[@]}" -cp "$LIB/*" org.neo4j.server.CommunityEntryPoint \
      --home-dir="$BASE" --config-dir="$CONF_DIR" --console-mode \
      </dev/null >>"$CONSOLE_LOG" 2>&1 &
  pid=$!
  echo "$pid" > "$PID_FILE"
  printf 'port=%s\ndata=%s\nhttp=%s\n' "$BOLT_PORT" "$DATA_DIR" "$HTTP_PORT" > "$STATE_FILE"

  while ! bolt_ok "$BOLT_PORT"; do
    if ! proc_live "$pid"; then
      log "Neo4j exited during start-up; last lines of $CONSOLE_LOG:"
      tail -n 40 "$CONSOLE_LOG" >&2
      rm -f "$PID_FILE" "$STATE_FILE"
      exit 1
    fi
    if (( SECONDS - t0 >= START_TIMEOUT )); then
      log "Bolt did not answer within ${START_TIMEOUT}s; last lines of $CONSOLE_LOG:"
      tail -n 40 "$CONSOLE_LOG" >&2
      stop >/dev/null 2>&1 || true
      exit 1
    fi
    sleep 0.5
  done
  log "started in $((SECONDS - t0))s (pid $pid, data $DATA_DIR)"
  echo "neo4j ready at bolt://127.0.0.1:$BOLT_PORT"
}

# ----------------------------------------------------------------- stop ----

stop() {
  local pid i
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE" "$STATE_FILE"
    echo "neo4j not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    alive "$pid" || break
    sleep 0.5
  done
  if alive "$pid"; then
    log "Neo4j (pid $pid) did not stop within 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      alive "$pid" || break
      sleep 0.25
    done
  fi
  rm -f "$PID_FILE" "$STATE_FILE"
  echo "neo4j stopped"
}

# --------------------------------------------------------------- status ----

status() {
  local pid port
  if pid="$(running_pid)"; then
    port="$(state_get port)"
    if bolt_ok "$port"; then
      echo "neo4j running (pid $pid) at bolt://127.0.0.1:$port"
      return 0
    fi
    echo "neo4j process $pid is up but Bolt on port $port does not answer"
    return 1
  fi
  echo "neo4j not running"
  return 3
}

# ------------------------------------------------------------------ run ----

run() {
  parse_opts "$@"
  [[ ${#REST[@]} -gt 0 ]] || die "usage: neo4j.sh run [--port N] [--http-port N] [--data DIR] -- CMD..."
  local -a cmd=("${REST[@]}") opts=(--port "$BOLT_PORT" --http-port "$HTTP_PORT" --data "$DATA_DIR")
  trap 'stop >/dev/null 2>&1 || true' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  start "${opts[@]}"
  local rc=0
  NEO4J_URI="bolt://127.0.0.1:$BOLT_PORT" NEO4J_BOLT_PORT="$BOLT_PORT" "${cmd[@]}" || rc=$?
  stop >/dev/null 2>&1 || true
  trap - EXIT
  exit "$rc"
}

# ----------------------------------------------------------------- main ----

CALLER_PWD="$PWD"
cd "$ROOT"
[[ $# -gt 0 ]] || usage
sub="$1"; shift
case "$sub" in
  fetch) fetch; echo "neo4j jars in $LIB" ;;
  start) start "$@" ;;
  stop) stop ;;
  status) status ;;
  restart)
    # Same port, HTTP port and data as the running server unless told otherwise.
    if [[ -f "$STATE_FILE" ]]; then
      BOLT_PORT="$(state_get port)"; DATA_DIR="$(state_get data)"; HTTP_PORT="$(state_get http)"
    fi
    stop; start "$@" ;;
  run) run "$@" ;;
  -h|--help|help) usage ;;
  *) log "unknown command: $sub"; usage ;;
esac
