# shellcheck shell=bash
# Shared by the scripts: start the services against the private servers
# that infra.sh runs, wait for readiness, stop them by PID; find a make run
# session and mint its admin token (demo, load, chaos).
# Source it; it defines functions and changes nothing by itself.

# The services that exist in this tree, in start order: products, inventory
# and orders first (orders calls the other two), then every other
# services/<name>/main.c by name - a service made by `make new-service` is
# built, given a database, started and tested without an edit here.
services() {
  local root s
  root=$(dirname "${BASH_SOURCE[0]}")/..
  for s in products inventory orders; do
    [[ -f $root/services/$s/main.c ]] && echo "$s"
  done
  for s in "$root"/services/*/main.c; do
    s=${s%/main.c}
    s=${s##*/}
    case $s in products | inventory | orders) continue ;; esac
    # only names scripts/new-service accepts: they end up in SQL and URLs
    [[ $s =~ ^[a-z][a-z0-9]*$ ]] && echo "$s"
  done
  return 0
}

# svc_port NAME BASE -> BASE+1 for products, +2 inventory, +3 orders; any
# other service: BASE + its .default_port (services/NAME/main.c) - 8080, so
# `make run` (BASE 8080) starts it on its default port.
svc_port() {
  local p
  case $1 in
  products) echo $(($2 + 1)) ;;
  inventory) echo $(($2 + 2)) ;;
  orders) echo $(($2 + 3)) ;;
  *)
    p=$(sed -n 's/^[[:space:]]*\.default_port = \([0-9]\{4,5\}\),.*/\1/p' \
      "$(dirname "${BASH_SOURCE[0]}")/../services/$1/main.c" 2>/dev/null | head -n 1)
    if [[ -z $p ]]; then
      echo "svc_port: no .default_port in services/$1/main.c" >&2
      return 1
    fi
    echo $(($2 + p - 8080))
    ;;
  esac
}

# A JWT secret kept in the state folder, made once (64 hex chars).
state_secret() {
  local f=$1/jwt_secret
  if [[ ! -s $f ]]; then
    umask 077
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$f"
  fi
  cat "$f"
}

# Drops and recreates a database (owned by OWNER) through the superuser
# socket of the private PostgreSQL. Needs PG_SOCKET_DIR and PG_PORT.
pg_recreate_db() {
  local db=$1 owner=$2
  PGOPTIONS='-c client_min_messages=warning' \
    runuser -u postgres -- "$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 \
    -h "$PG_SOCKET_DIR" -p "$PG_PORT" -d postgres \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
    -c "CREATE DATABASE $db OWNER $owner" >/dev/null
}

# wait_ready URL SECONDS PID: polls until 200, the process dies, or time ends.
wait_ready() {
  local url=$1 deadline=$((SECONDS + $2)) pid=$3
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
# Returns the process's exit status when it is our child, else 0.
stop_pid() {
  local pid=$1 deadline=$((SECONDS + $2)) rc=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "pid $pid did not stop in $2 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}

# ---- processes and ports, for the scripts that start servers -------------
# Is something listening on TCP port $1 (any address, IPv4 or IPv6)?
# Reads /proc/net/tcp* so it needs no tools and opens no connection.
port_listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Does pid $1 exist and does its file $2 (cmdline/environ) contain string $3?
pid_matches() {
  [[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null &&
    tr '\0' '\n' <"/proc/$1/$2" 2>/dev/null | grep -qF -- "$3"
}
read_pid() { # first line of pid file $1, digits only; empty if none
  if [[ -r $1 ]]; then head -n 1 -- "$1" | tr -dc '0-9'; fi
}

# wait_gone PID SECONDS: waits up to SECONDS for PID to exit.
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# phase LABEL: prints LABEL and the seconds, with tenths, since the
# previous phase (or since PHASE_T, microseconds, was set), after
# PHASE_PREFIX; for scripts that time their steps.
phase() {
  local now=${EPOCHREALTIME/./} us
  us=$((now - ${PHASE_T:-$now}))
  PHASE_T=$now
  printf '%s%-28s %5d.%d s\n' "${PHASE_PREFIX:-}" "$1" $((us / 1000000)) \
    $((us % 1000000 / 100000))
}

# run_session: where a `make run` session is, the way run.sh places it:
# STATE (RUN_STATE_DIR, .run), HTTP_BASE (RUN_HTTP_BASE, 8080), PID_DIR,
# BUILD (build), and PRODUCTS, INVENTORY, ORDERS, the three services'
# base URLs. For the scripts that talk to it (demo, load, chaos).
# shellcheck disable=SC2034 # set for the caller
run_session() {
  STATE=$(realpath -m "${RUN_STATE_DIR:-.run}")
  HTTP_BASE=${RUN_HTTP_BASE:-8080}
  BUILD=${BUILD:-build}
  PID_DIR=$STATE/pids
  PRODUCTS=http://127.0.0.1:$(svc_port products "$HTTP_BASE")
  INVENTORY=http://127.0.0.1:$(svc_port inventory "$HTTP_BASE")
  ORDERS=http://127.0.0.1:$(svc_port orders "$HTTP_BASE")
}

# pid_of FILE: the PID in pid file FILE, if that process is alive.
pid_of() {
  local p
  p=$(head -n 1 "$1" 2>/dev/null | tr -dc 0-9) || true
  [[ -n $p ]] && kill -0 "$p" 2>/dev/null && echo "$p"
  return 0
}

# run_admin_token SUB TTL: an admin token for the make run session in
# STATE, minted with $BUILD/products and the session's JWT_SECRET (or the
# environment's); on failure one line on stderr and status 1.
run_admin_token() {
  local secret out
  secret=${JWT_SECRET:-$(cat "$STATE/jwt_secret" 2>/dev/null)} || true
  if [[ -z $secret ]]; then
    echo "$STATE/jwt_secret is missing: set JWT_SECRET to the one make run uses" >&2
    return 1
  fi
  if out=$(JWT_SECRET=$secret "$BUILD/products" token --role admin \
    --sub "$1" --ttl "$2" 2>&1); then
    echo "$out"
    return 0
  fi
  echo "cannot mint an admin token with $BUILD/products: ${out%%$'\n'*}" >&2
  return 1
}
