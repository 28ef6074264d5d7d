#!/usr/bin/env bash
# make run: installs what is missing, builds, starts a private PostgreSQL
# and RabbitMQ under .run/, applies migrations and runs every service in the
# foreground with its log lines prefixed by its name. Ctrl-C (or SIGTERM to
# this script) stops the services, then the servers - only what this script
# started, by PID. Variables given to `make run` (LOG_LEVEL=debug,
# JWT_SECRET=...) reach the services.
#
# Each service's PID is in STATE/pids/<service>.pid (run.sh's own in
# run.pid). A service that exits ends the session - unless
# STATE/pids/<service>.hold exists: then it stays down until that file is
# removed and is started again here, the same way (make demo stops
# inventory like this).
#
# Environment: RUN_STATE_DIR (.run), RUN_PG_PORT (25432), RUN_AMQP_PORT
# (25682), RUN_HTTP_BASE (8080: products 8081, inventory 8082, orders 8083),
# RUN_HOST (127.0.0.1; 0.0.0.0 to listen on every interface), BUILD (build),
# FAULTS (on: /admin/faults, docs/faults.md), RATE_LIMIT (off: below).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

STATE=$(realpath -m "${RUN_STATE_DIR:-.run}")
export PG_PORT=${RUN_PG_PORT:-25432}
export AMQP_PORT=${RUN_AMQP_PORT:-25682}
HTTP_BASE=${RUN_HTTP_BASE:-8080}
BUILD=${BUILD:-build}
PG_BIN=/usr/lib/postgresql/15/bin
PID_DIR=$STATE/pids

scripts/deps.sh
make -s -j"$(nproc)" all

declare -A PIDS=()
stopping=0
shutdown() {
  ((stopping)) && return
  stopping=1
  trap - EXIT INT TERM
  echo "== stopping"
  local s
  # orders first: its pooled connections would hold the others' drains open.
  for s in $(services | tac); do
    [[ -z ${PIDS[$s]:-} ]] || stop_pid "${PIDS[$s]}" 30 || true
  done
  rm -rf "$PID_DIR"
  scripts/infra.sh stop "$STATE" || true
  exit 0
}
trap shutdown EXIT INT TERM

scripts/infra.sh start "$STATE"
set -a
. "$STATE/env"
set +a
export JWT_SECRET=${JWT_SECRET:-$(state_secret "$STATE")}
# /admin/faults on every service, to break it on purpose (docs/faults.md);
# FAULTS=off make run leaves it out. Never on in production.
export FAULTS=${FAULTS:-on}
# Everything here comes from 127.0.0.1, one client to the rate limiter:
# make load and make chaos would be refused past 600/minute. RATE_LIMIT=
# 600/minute make run (the services' default) to see it at work.
export RATE_LIMIT=${RATE_LIMIT:-off}
# Plain text lines on a terminal; JSON when piped (or LOG_FORMAT=json).
if [[ -t 1 ]]; then export LOG_FORMAT=${LOG_FORMAT:-text}; fi

# Colours of the three; any other service (make new-service) is yellow.
declare -A COLORS=([products]=32 [inventory]=36 [orders]=35)
# start_service NAME: in the background, log lines prefixed with its name;
# its PID goes to PIDS and to PID_DIR/NAME.pid.
start_service() {
  local s=$1 port url_var prefix
  port=$(svc_port "$s" "$HTTP_BASE")
  url_var=${s^^}_DATABASE_URL
  prefix=$(printf '\033[%sm%-9s|\033[0m ' "${COLORS[$s]:-33}" "$s")
  [[ -t 1 ]] || prefix=$(printf '%-9s| ' "$s")
  SERVICE_HOST=${RUN_HOST:-127.0.0.1} SERVICE_PORT=$port \
    DATABASE_URL=${!url_var} "$BUILD/$s" \
    > >(sed -u "s/^/$prefix/") 2>&1 &
  PIDS[$s]=$!
  echo "$!" >"$PID_DIR/$s.pid"
}

rm -rf "$PID_DIR"
mkdir -p "$PID_DIR"
echo "$$" >"$PID_DIR/run.pid"
for s in $(services); do
  start_service "$s"
  # Services started later (orders) find the earlier ones here.
  export "${s^^}_URL=http://127.0.0.1:$(svc_port "$s" "$HTTP_BASE")"
done
for s in $(services); do
  port=$(svc_port "$s" "$HTTP_BASE")
  wait_ready "http://127.0.0.1:$port/health/ready" 60 "${PIDS[$s]}" ||
    { echo "$s did not become ready" >&2; exit 1; }
done

cat <<MSG
== microshop is running (Ctrl-C stops everything)
$(for s in $(services); do echo "   $s: http://127.0.0.1:$(svc_port "$s" "$HTTP_BASE")"; done)
   PostgreSQL: 127.0.0.1:$PG_PORT   RabbitMQ: $RABBITMQ_URL
   admin token: TOKEN=\$(JWT_SECRET=\$(cat $STATE/jwt_secret) build/products token)
   the story: make demo (in another terminal, with the same RUN_* settings)
MSG

# Wait until a service exits (or a signal arrives); one that is held
# comes back when its hold file goes.
while :; do
  exited=
  wait -n -p exited "${PIDS[@]}" || true
  s=
  for name in "${!PIDS[@]}"; do
    [[ ${PIDS[$name]} == "$exited" ]] && s=$name
  done
  [[ -n $s && -e $PID_DIR/$s.hold ]] || break
  unset "PIDS[$s]"
  rm -f "$PID_DIR/$s.pid"
  echo "== $s stopped; held until $PID_DIR/$s.hold is removed"
  while [[ -e $PID_DIR/$s.hold ]]; do
    for name in "${!PIDS[@]}"; do
      kill -0 "${PIDS[$name]}" 2>/dev/null || break 3
    done
    sleep 0.2
  done
  start_service "$s"
  echo "== $s started again (pid ${PIDS[$s]})"
done
echo "a service exited; stopping the rest" >&2
