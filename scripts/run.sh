#!/usr/bin/env bash
# make run: installs what is missing, builds, starts a private PostgreSQL
# and RabbitMQ under .run/, applies migrations and runs every service in the
# foreground with its log lines prefixed by its name. Ctrl-C (or SIGTERM to
# this script) stops the services, then the servers - only what this script
# started, by PID. Variables given to `make run` (LOG_LEVEL=debug,
# JWT_SECRET=...) reach the services.
#
# Environment: RUN_STATE_DIR (.run), RUN_PG_PORT (25432), RUN_AMQP_PORT
# (25682), RUN_HTTP_BASE (8080: products 8081, inventory 8082, orders 8083),
# RUN_HOST (127.0.0.1; 0.0.0.0 to listen on every interface).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

STATE=$(realpath -m "${RUN_STATE_DIR:-.run}")
export PG_PORT=${RUN_PG_PORT:-25432}
export AMQP_PORT=${RUN_AMQP_PORT:-25682}
HTTP_BASE=${RUN_HTTP_BASE:-8080}
PG_BIN=/usr/lib/postgresql/15/bin

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
  scripts/infra.sh stop "$STATE" || true
  exit 0
}
trap shutdown EXIT INT TERM

scripts/infra.sh start "$STATE"
set -a
. "$STATE/env"
set +a
export JWT_SECRET=${JWT_SECRET:-$(state_secret "$STATE")}
# Plain text lines on a terminal; JSON when piped (or LOG_FORMAT=json).
if [[ -t 1 ]]; then export LOG_FORMAT=${LOG_FORMAT:-text}; fi

colors=(32 36 35)
i=0
for s in $(services); do
  port=$(svc_port "$s" "$HTTP_BASE")
  url_var=${s^^}_DATABASE_URL
  prefix=$(printf '\033[%sm%-9s|\033[0m ' "${colors[i++ % 3]}" "$s")
  [[ -t 1 ]] || prefix=$(printf '%-9s| ' "$s")
  SERVICE_HOST=${RUN_HOST:-127.0.0.1} SERVICE_PORT=$port \
    DATABASE_URL=${!url_var} "build/$s" \
    > >(sed -u "s/^/$prefix/") 2>&1 &
  PIDS[$s]=$!
  # Services started later (orders) find the earlier ones here.
  export "${s^^}_URL=http://127.0.0.1:$port"
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
MSG

# Wait until any service exits (or a signal arrives).
wait -n "${PIDS[@]}" || true
echo "a service exited; stopping the rest" >&2
