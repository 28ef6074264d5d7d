#!/usr/bin/env bash
# Runs a private PostgreSQL 15 and a private RabbitMQ for microshop, all state
# under one folder, listening on 127.0.0.1 only. Several instances with
# different folders and ports can run side by side; a PostgreSQL or RabbitMQ
# that this script did not start is never touched (it stops by pid file only).
#
# Usage: scripts/infra.sh start|stop|status|env STATE_DIR [postgres|rabbitmq]
#        scripts/infra.sh vhost STATE_DIR NAME
#   start   start both (idempotent), create roles/databases, write STATE_DIR/env
#   stop    stop both (idempotent)
#   (start and stop act on one server only when it is named: the tests stop
#   and start RabbitMQ under the running services this way)
#   status  print whether each runs; exit 0 if both run, 3 otherwise
#   env     print shell-sourceable settings (NAME=value lines)
#   vhost   create RabbitMQ virtual host NAME for guest (idempotent): the
#           tests run service instances there, apart from the suite's events
# Ports (read by start; later commands reuse the ones start saved):
#   PG_PORT (25432), AMQP_PORT (25682), AMQP_DIST_PORT (AMQP_PORT+1)
#   (below 32768: Linux hands out ports above it to outgoing connections,
#   which can hold a port just when a server wants to bind it)
# Needs root (the servers run as the postgres and rabbitmq users); env does not.
set -euo pipefail
set +m # no job control even if run interactively: setsid must not fork

readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly RMQ_BIN=/usr/lib/rabbitmq/bin
# A role and a database (<service>_db) for every service of the tree,
# including those made by `make new-service` (scripts/lib.sh).
. "$(dirname "$0")/lib.sh"
mapfile -t SERVICES < <(services)
readonly SERVICES
readonly START_TIMEOUT=60 # seconds for each server to come up
readonly STOP_TIMEOUT=30  # seconds for each server to go down before kill
readonly CLEAN_PATH=/usr/sbin:/usr/bin:/sbin:/bin

usage() {
  sed -n '7,20s/^# \{0,1\}//p' "$0" >&2
  exit 2
}
die() {
  echo "infra.sh: $*" >&2
  exit 1
}
note() { echo "$*"; }

[[ $# -eq 2 || $# -eq 3 ]] || usage
CMD=$1
case $CMD in start | stop | status | env | vhost) ;; *) usage ;; esac
ONLY=${3:-}
if [[ $CMD == vhost ]]; then
  [[ $ONLY =~ ^[A-Za-z0-9_.-]+$ ]] || usage
  VHOST=$ONLY ONLY=rabbitmq
fi
case $ONLY in '' | postgres | rabbitmq) ;; *) usage ;; esac
[[ -z $ONLY || $CMD == start || $CMD == stop || $CMD == vhost ]] || usage
[[ -n $2 ]] || usage
STATE=$(realpath -m -- "$2")
[[ $STATE != / ]] || die "STATE_DIR must not be /"
if [[ $CMD != env && $(id -u) -ne 0 ]]; then
  die "$CMD needs root (servers run as the postgres and rabbitmq users)"
fi

# ---- layout ---------------------------------------------------------------
PG_DIR=$STATE/pg             # owned by postgres
PG_DATA=$PG_DIR/data         # the cluster (postmaster.pid lives here)
PG_SOCKET_DIR=$PG_DIR/run    # unix socket
PG_LOG=$PG_DIR/postgres.log
RMQ_DIR=$STATE/rabbitmq      # owned by rabbitmq
RMQ_HOME=$RMQ_DIR/home       # HOME with .erlang.cookie (server and CLI)
RMQ_PIDFILE=$RMQ_DIR/rabbitmq.pid
RMQ_LAUNCHER_PIDFILE=$RMQ_DIR/launcher.pid
RMQ_STARTUP_LOG=$RMQ_DIR/startup.log
ENV_FILE=$STATE/env

# ---- ports ------------------------------------------------------------------
# start: environment > saved (STATE_DIR/env) > default.
# stop/status/env: saved > environment > default (act on what runs).
saved() { # saved NAME -> value from STATE_DIR/env, or empty
  [[ -r $ENV_FILE ]] || return 0
  sed -n "s/^$1=\([0-9]*\)\$/\1/p" "$ENV_FILE" | tail -n 1
}
ENV_PG_PORT=${PG_PORT:-} ENV_AMQP_PORT=${AMQP_PORT:-} ENV_DIST_PORT=${AMQP_DIST_PORT:-}
if [[ $CMD == start ]]; then
  PG_PORT=${ENV_PG_PORT:-$(saved PG_PORT)}
  AMQP_PORT=${ENV_AMQP_PORT:-$(saved AMQP_PORT)}
  AMQP_DIST_PORT=$ENV_DIST_PORT
  # a saved dist port only applies to the saved AMQP port
  if [[ -z $AMQP_DIST_PORT && (-z $ENV_AMQP_PORT || $ENV_AMQP_PORT == "$(saved AMQP_PORT)") ]]; then
    AMQP_DIST_PORT=$(saved AMQP_DIST_PORT)
  fi
else
  PG_PORT=$(saved PG_PORT)
  PG_PORT=${PG_PORT:-$ENV_PG_PORT}
  AMQP_PORT=$(saved AMQP_PORT)
  AMQP_PORT=${AMQP_PORT:-$ENV_AMQP_PORT}
  AMQP_DIST_PORT=$(saved AMQP_DIST_PORT)
  AMQP_DIST_PORT=${AMQP_DIST_PORT:-$ENV_DIST_PORT}
fi
PG_PORT=${PG_PORT:-25432}
AMQP_PORT=${AMQP_PORT:-25682}
if [[ -z $AMQP_DIST_PORT && $AMQP_PORT =~ ^[1-9][0-9]{0,4}$ ]]; then
  AMQP_DIST_PORT=$((AMQP_PORT + 1))
  ((AMQP_DIST_PORT <= 65535)) || AMQP_DIST_PORT=$((AMQP_PORT - 1))
fi
for p in PG_PORT AMQP_PORT AMQP_DIST_PORT; do
  if ! [[ ${!p} =~ ^[1-9][0-9]{3,4}$ ]] || ((${!p} < 1024 || ${!p} > 65535)); then
    die "$p=${!p} is not a port number in 1024..65535"
  fi
done
[[ $PG_PORT != "$AMQP_PORT" && $PG_PORT != "$AMQP_DIST_PORT" && $AMQP_PORT != "$AMQP_DIST_PORT" ]] ||
  die "PG_PORT=$PG_PORT AMQP_PORT=$AMQP_PORT AMQP_DIST_PORT=$AMQP_DIST_PORT must all differ"
((AMQP_DIST_PORT != 4369)) || die "AMQP_DIST_PORT must not be 4369 (epmd)"

# Unique Erlang node name per state folder and port.
NODE_TAG=$(printf %s "${STATE##*/}" | tr -c 'A-Za-z0-9_-' _)
RMQ_NODE="microshop-${NODE_TAG}-${AMQP_PORT}@localhost"
RMQ_MNESIA=$RMQ_DIR/mnesia
RMQ_LOG_DIR=$RMQ_DIR/log
RMQ_LOG=$RMQ_LOG_DIR/$RMQ_NODE.log

# ---- helpers --------------------------------------------------------------
print_env() {
  local svc url
  printf 'PG_PORT=%s\n' "$PG_PORT"
  printf 'AMQP_PORT=%s\n' "$AMQP_PORT"
  printf 'AMQP_DIST_PORT=%s\n' "$AMQP_DIST_PORT"
  for svc in "${SERVICES[@]}" bench; do
    url="postgres://$svc:$svc@127.0.0.1:$PG_PORT/${svc}_db"
    printf '%s_DATABASE_URL=%s\n' "${svc^^}" "$url"
  done
  # "/%2f" = vhost "/"; a bare trailing "/" means the empty vhost to rabbitmq-c
  printf 'RABBITMQ_URL=amqp://guest:guest@127.0.0.1:%s/%%2f\n' "$AMQP_PORT"
  printf 'PG_BIN=%q\n' "$PG_BIN"
  printf 'PG_SOCKET_DIR=%q\n' "$PG_SOCKET_DIR"
}

# postgres and rabbitmq must be able to reach their folders: give "others"
# search (x) permission on STATE_DIR and each parent that lacks it.
ensure_traversable() {
  local d=$STATE perm
  while :; do
    perm=$(stat -c %a -- "$d")
    if ((!(8#$perm & 1))); then
      chmod o+x -- "$d"
      note "infra: chmod o+x $d (so the postgres/rabbitmq users can reach $STATE)"
    fi
    [[ $d == / ]] && break
    d=$(dirname -- "$d")
  done
}

tail_log() { # print the end of a log to stderr, if it exists
  [[ -s $1 ]] || return 0
  echo "---- last lines of $1 ----" >&2
  tail -n "${2:-15}" -- "$1" >&2
}

# ---- PostgreSQL ---------------------------------------------------------
as_pg() { # run a PostgreSQL tool as postgres, clean environment
  (cd "$PG_DIR" && exec runuser -u postgres -- env -i PATH="$PG_BIN:$CLEAN_PATH" LANG=C.UTF-8 "$@")
}
pg_pid() { read_pid "$PG_DATA/postmaster.pid"; }
pg_running() {
  local pid
  pid=$(pg_pid)
  [[ -n $pid ]] && pid_matches "$pid" cmdline "$PG_DATA"
}
pg_saved_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_init() {
  [[ -f $PG_DATA/PG_VERSION ]] && return 0
  rm -rf -- "$PG_DATA" # only ever an incomplete initdb of ours
  if ! as_pg initdb -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 --no-instructions \
    >"$PG_DIR/initdb.log" 2>&1; then
    tail_log "$PG_DIR/initdb.log"
    die "postgres: initdb failed, see $PG_DIR/initdb.log"
  fi
  cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by scripts/infra.sh.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 trust
local   all       all                      scram-sha-256
host    all       all       127.0.0.1/32   scram-sha-256
EOF
  echo "include_if_exists = 'microshop.conf'" >>"$PG_DATA/postgresql.conf"
  chown postgres:postgres "$PG_DATA/pg_hba.conf"
  note "postgres: initialised cluster in $PG_DATA"
}

pg_write_conf() {
  cat >"$PG_DATA/microshop.conf" <<EOF
# Written by scripts/infra.sh on every start.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '${PG_SOCKET_DIR//\'/\'\'}'
max_connections = 200
shared_buffers = 128MB
EOF
  chown postgres:postgres "$PG_DATA/microshop.conf"
}

pg_ensure_databases() {
  local svc roles=() sql
  for svc in "${SERVICES[@]}" bench; do roles+=("'$svc'"); done
  local list
  list=$(IFS=,; echo "${roles[*]}")
  sql="
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', r, r)
  FROM unnest(ARRAY[$list]) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', r || '_db', r)
  FROM unnest(ARRAY[$list]) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = r || '_db') \\gexec
"
  if ! as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" \
    -U postgres -d postgres <<<"$sql" >"$PG_DIR/setup.log" 2>&1; then
    cat "$PG_DIR/setup.log" >&2
    die "postgres: creating roles/databases failed, see $PG_DIR/setup.log and $PG_LOG"
  fi
  note "postgres: databases ready: $(printf '%s_db ' "${SERVICES[@]}")bench_db"
}

pg_start() {
  if pg_running; then
    note "postgres: already running on 127.0.0.1:$PG_PORT (pid $(pg_pid))"
  else
    mkdir -p "$PG_DIR" "$PG_SOCKET_DIR"
    chown postgres:postgres "$PG_DIR" "$PG_SOCKET_DIR"
    chmod 755 "$PG_DIR" "$PG_SOCKET_DIR"
    pg_init
    pg_write_conf
    # shellcheck disable=SC2016 # $1.. expand in the inner sh
    # setsid: a Ctrl-C in the caller's terminal must not reach the postmaster.
    if ! setsid runuser -u postgres -- env -i PATH="$PG_BIN:$CLEAN_PATH" LANG=C.UTF-8 \
      sh -c 'cd "$1" && exec pg_ctl start -D "$2" -l "$3" -w -t "$4" -s' sh \
      "$PG_DIR" "$PG_DATA" "$PG_LOG" "$START_TIMEOUT" 9>&-; then
      tail_log "$PG_LOG"
      die "postgres: failed to start, see $PG_LOG"
    fi
    note "postgres: started on 127.0.0.1:$PG_PORT (pid $(pg_pid), log $PG_LOG)"
  fi
  pg_ensure_databases
}

pg_stop() {
  if ! pg_running; then
    note "postgres: not running"
    return 0
  fi
  local pid
  pid=$(pg_pid)
  if ! as_pg pg_ctl stop -D "$PG_DATA" -m fast -w -t "$STOP_TIMEOUT" -s; then
    echo "postgres: fast shutdown timed out, using immediate shutdown" >&2
    as_pg pg_ctl stop -D "$PG_DATA" -m immediate -w -t "$STOP_TIMEOUT" -s ||
      die "postgres: could not stop pid $pid, see $PG_LOG"
  fi
  note "postgres: stopped (was pid $pid)"
}

# ---- RabbitMQ -----------------------------------------------------------
# The same clean environment for the server and for rabbitmqctl, so both use
# our HOME (cookie), node name and config, never /etc/rabbitmq/rabbitmq-env.conf.
rmq_env() { # the env(1) command line for the server and for rabbitmqctl
  RMQ_ENV=(env -i
    PATH="$CLEAN_PATH" LANG=C.UTF-8 LC_ALL=C.UTF-8 HOME="$RMQ_HOME"
    RABBITMQ_NODENAME="$RMQ_NODE"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$AMQP_PORT"
    RABBITMQ_DIST_PORT="$AMQP_DIST_PORT"
    RABBITMQ_MNESIA_BASE="$RMQ_MNESIA"
    RABBITMQ_LOG_BASE="$RMQ_LOG_DIR"
    RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
    RABBITMQ_FEATURE_FLAGS_FILE="$RMQ_MNESIA/$RMQ_NODE-feature_flags"
    RABBITMQ_PID_FILE="$RMQ_PIDFILE"
    RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"
    RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"
    ERL_EPMD_ADDRESS=127.0.0.1
    ERL_CRASH_DUMP="$RMQ_LOG_DIR/erl_crash.dump"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
}
rmq_env
rmqctl() {
  (cd "$RMQ_HOME" && exec runuser -u rabbitmq -- "${RMQ_ENV[@]}" \
    timeout 120 "$RMQ_BIN/rabbitmqctl" -q -n "$RMQ_NODE" "$@")
}
rmq_pid() { read_pid "$RMQ_PIDFILE"; }
rmq_running() {
  local pid
  pid=$(rmq_pid)
  [[ -n $pid ]] && pid_matches "$pid" environ "RABBITMQ_PID_FILE=$RMQ_PIDFILE"
}
# The setsid'd launcher (runuser -> sh rabbitmq-server -> beam) leads its own
# process group; kill that group if the broker is stuck or half started.
rmq_kill_launcher() {
  local lpid
  lpid=$(read_pid "$RMQ_LAUNCHER_PIDFILE")
  if [[ -n $lpid ]] && pid_matches "$lpid" cmdline "RABBITMQ_PID_FILE=$RMQ_PIDFILE"; then
    kill -TERM -- "-$lpid" 2>/dev/null || true
    wait_gone "$lpid" 10 || kill -KILL -- "-$lpid" 2>/dev/null || true
  fi
  rm -f -- "$RMQ_LAUNCHER_PIDFILE"
}

rmq_prepare() {
  mkdir -p "$RMQ_HOME" "$RMQ_MNESIA" "$RMQ_LOG_DIR"
  if [[ ! -s $RMQ_HOME/.erlang.cookie ]]; then
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F >"$RMQ_HOME/.erlang.cookie"
  fi
  chmod 400 "$RMQ_HOME/.erlang.cookie"
  echo '[].' >"$RMQ_DIR/enabled_plugins" # no plugins: faster start
  : >"$RMQ_DIR/rabbitmq-env.conf"       # shields us from /etc/rabbitmq/rabbitmq-env.conf
  cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
# Written by scripts/infra.sh on every start.
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
log.console = false
EOF
  chown -R rabbitmq:rabbitmq "$RMQ_DIR"
}

rmq_start() {
  if rmq_running; then
    note "rabbitmq: already running on 127.0.0.1:$AMQP_PORT (pid $(rmq_pid), node $RMQ_NODE)"
    return 0
  fi
  rmq_kill_launcher # leftovers of a failed start, if any
  rmq_prepare
  rm -f -- "$RMQ_PIDFILE"
  # In the background, in its own session (setsid) so a Ctrl-C in the
  # caller's terminal does not hit it; rabbitmq-server stays in the
  # foreground of that session and writes RABBITMQ_PID_FILE (the beam pid).
  # The subshell execs setsid, which (not being a group leader) calls
  # setsid() in place: $! is the session and process group leader.
  (cd "$RMQ_HOME" && exec setsid runuser -u rabbitmq -- "${RMQ_ENV[@]}" \
    "$RMQ_BIN/rabbitmq-server") >"$RMQ_STARTUP_LOG" 2>&1 </dev/null 9>&- &
  local launcher=$! i
  echo "$launcher" >"$RMQ_LAUNCHER_PIDFILE"
  # Wait for the AMQP listener (cheap to poll), then confirm with await_startup.
  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    port_listening "$AMQP_PORT" && break
    if ! kill -0 "$launcher" 2>/dev/null; then
      tail_log "$RMQ_STARTUP_LOG"
      die "rabbitmq: server exited during start, see $RMQ_STARTUP_LOG and $RMQ_LOG"
    fi
    sleep 0.1
  done
  if ! port_listening "$AMQP_PORT" || ! rmqctl await_startup --timeout 30 >>"$RMQ_STARTUP_LOG" 2>&1; then
    tail_log "$RMQ_STARTUP_LOG"
    tail_log "$RMQ_LOG"
    rmq_kill_launcher
    die "rabbitmq: not up after ${START_TIMEOUT}s, see $RMQ_LOG and $RMQ_STARTUP_LOG"
  fi
  note "rabbitmq: started on 127.0.0.1:$AMQP_PORT (pid $(rmq_pid), node $RMQ_NODE, log $RMQ_LOG)"
}

rmq_stop() {
  if ! rmq_running; then
    rmq_kill_launcher
    rm -f -- "$RMQ_PIDFILE"
    note "rabbitmq: not running"
    return 0
  fi
  local pid
  pid=$(rmq_pid)
  if ! rmqctl stop >/dev/null 2>&1; then
    echo "rabbitmq: rabbitmqctl stop failed, sending SIGTERM to pid $pid" >&2
    kill -TERM "$pid" 2>/dev/null || true
  fi
  if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
    echo "rabbitmq: pid $pid still there after ${STOP_TIMEOUT}s, sending SIGTERM" >&2
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 10; then
      echo "rabbitmq: sending SIGKILL to pid $pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || die "rabbitmq: could not stop pid $pid, see $RMQ_LOG"
    fi
  fi
  # The launcher (runuser + sh) exits with the broker; make sure of it.
  local lpid
  lpid=$(read_pid "$RMQ_LAUNCHER_PIDFILE")
  [[ -z $lpid ]] || wait_gone "$lpid" 5 || rmq_kill_launcher
  rm -f -- "$RMQ_PIDFILE" "$RMQ_LAUNCHER_PIDFILE"
  note "rabbitmq: stopped (was pid $pid)"
}

# Checks before start changes anything: a running server keeps its ports,
# a server to be started needs free ports and a short enough socket path.
preflight() {
  if pg_running; then
    local running
    running=$(pg_saved_port)
    [[ $running == "$PG_PORT" ]] ||
      die "postgres: already running on port $running for $STATE; stop it first to change PG_PORT"
  else
    local sock="$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT"
    ((${#sock} <= 107)) ||
      die "postgres: socket path too long (${#sock} > 107 bytes): $sock; use a shorter STATE_DIR"
    ! port_listening "$PG_PORT" || die "postgres: port $PG_PORT is already in use (set PG_PORT)"
  fi
  if rmq_running; then
    local p d
    p=$(saved AMQP_PORT)
    d=$(saved AMQP_DIST_PORT)
    [[ $p == "$AMQP_PORT" && $d == "$AMQP_DIST_PORT" ]] ||
      die "rabbitmq: already running on ports $p/$d for $STATE; stop it first to change AMQP_PORT/AMQP_DIST_PORT"
  else
    ! port_listening "$AMQP_PORT" || die "rabbitmq: port $AMQP_PORT is already in use (set AMQP_PORT)"
    ! port_listening "$AMQP_DIST_PORT" || die "rabbitmq: port $AMQP_DIST_PORT is already in use (set AMQP_DIST_PORT)"
  fi
}

# ---- commands -------------------------------------------------------------
lock_state() { # serialise start/stop on the same STATE_DIR
  # fd 9 holds the lock; the servers are started with 9>&- so they don't.
  exec 9>"$STATE/.lock"
  flock -w 120 9 || die "another infra.sh holds $STATE/.lock"
}

case $CMD in
start)
  for p in "$PG_BIN/pg_ctl" "$RMQ_BIN/rabbitmq-server"; do
    [[ -x $p ]] || die "$p not found; run scripts/deps.sh"
  done
  mkdir -p -- "$STATE"
  lock_state
  preflight
  ensure_traversable
  print_env >"$ENV_FILE.tmp" && mv -f -- "$ENV_FILE.tmp" "$ENV_FILE"
  [[ $ONLY == rabbitmq ]] || pg_start
  [[ $ONLY == postgres ]] || rmq_start
  note "env: $ENV_FILE"
  ;;
stop)
  if [[ ! -d $STATE ]]; then
    note "nothing to stop: $STATE does not exist"
    exit 0
  fi
  lock_state
  [[ $ONLY == postgres ]] || rmq_stop
  [[ $ONLY == rabbitmq ]] || pg_stop
  ;;
status)
  rc=0
  if pg_running; then
    note "postgres: running on 127.0.0.1:$(pg_saved_port) (pid $(pg_pid), data $PG_DATA)"
  else
    note "postgres: not running"
    rc=3
  fi
  if rmq_running; then
    note "rabbitmq: running on 127.0.0.1:$AMQP_PORT (pid $(rmq_pid), node $RMQ_NODE)"
  else
    note "rabbitmq: not running"
    rc=3
  fi
  exit $rc
  ;;
env)
  print_env
  ;;
vhost)
  rmq_running || die "rabbitmq: not running for $STATE"
  # Fails when it exists; set_permissions fails when it does not.
  rmqctl add_vhost "$VHOST" >/dev/null 2>&1 || true
  rmqctl set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null ||
    die "rabbitmq: cannot give guest vhost $VHOST"
  note "rabbitmq: vhost $VHOST ready"
  ;;
esac
