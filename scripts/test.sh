#!/usr/bin/env bash
# make test: installs what is missing, builds, runs the unit tests, starts a
# private PostgreSQL and RabbitMQ under .test/ (ports of their own, so it
# works while `make run` is up), recreates the databases, starts the real
# service binaries, runs the integration and contract suites against them,
# and stops everything it started, pass or fail. Exits non-zero on any
# failure, including a service that does not exit cleanly (under the
# sanitizer build that is how leaks and UB in the services surface).
# Last, make compose-test: the compose stack built, run and checked
# (scripts/compose-test.sh).
#
# Environment: BUILD (build), SAN (1 = ASan+UBSan build), TEST_STATE_DIR
# (.test), TEST_PG_PORT (26432), TEST_AMQP_PORT (26682), TEST_HTTP_BASE
# (18080: services on +1, +2, +3), VALGRIND (1 = services under valgrind),
# TEST_COMPOSE (0 = leave make compose-test out: for a second tree testing
# on the same machine, whose images would take the same names).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

BUILD=${BUILD:-build}
STATE=$(realpath -m "${TEST_STATE_DIR:-.test}")
export PG_PORT=${TEST_PG_PORT:-26432}
export AMQP_PORT=${TEST_AMQP_PORT:-26682}
HTTP_BASE=${TEST_HTTP_BASE:-18080}
PG_BIN=/usr/lib/postgresql/15/bin

scripts/deps.sh
echo "== build ($BUILD${SAN:+, sanitizers})"
make -s -j"$(nproc)" BUILD="$BUILD" SAN="${SAN:-}" all

echo "== unit tests"
"$BUILD/tests/unit"
echo "== fuzz corpus (ASan+UBSan)"
make -s -j"$(nproc)" BUILD="$BUILD" fuzz-replay
echo "== prometheus rules"; scripts/check-rules.sh
echo "== configuration keys"; scripts/check-config.sh "$BUILD"
# Deployment files (docs/deploy.md): docker-compose config -q, the manifests,
# a rehearsal of the Dockerfile's build stage, make install into a scratch
# prefix and systemd-analyze verify of the installed units. The integration
# suite runs the installed binary (INSTALL_PREFIX, INSTALL_DATABASE_URL).
echo "== deploy files"; scripts/check-deploy.sh "$STATE/deploy"
export INSTALL_PREFIX=$STATE/deploy/prefix

declare -A PIDS=()
status=0
cleanup() {
  local s rc
  # orders first: its pooled connections to the others would hold their
  # drains open (a drain waits for idle keep-alive connections).
  for s in $(services | tac); do
    [[ -n ${PIDS[$s]:-} ]] || continue
    rc=0
    stop_pid "${PIDS[$s]}" 30 || rc=$?
    if ((rc != 0)); then
      echo "FAIL: $s exited with status $rc on SIGTERM (see $STATE/logs/$s.log)" >&2
      status=1
    fi
  done
  PIDS=()
  scripts/infra.sh stop "$STATE" >/dev/null || true
}
finish() {
  local rc=$?
  trap - EXIT INT TERM
  cleanup
  ((rc == 0)) && rc=$status
  if ((rc == 0)); then echo "== all tests passed"; else echo "== FAILED" >&2; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

echo "== servers ($STATE)"
mkdir -p "$STATE/logs"
scripts/infra.sh start "$STATE"
set -a
. "$STATE/env"
set +a
for s in $(services); do
  pg_recreate_db "${s}_db" "$s"
done
pg_recreate_db scratch_db products
export SCRATCH_DATABASE_URL=${PRODUCTS_DATABASE_URL%/*}/scratch_db
# A products database for the instances test_relay.c starts and kills.
pg_recreate_db relay_db products
export RELAY_DATABASE_URL=${PRODUCTS_DATABASE_URL%/*}/relay_db
# test_lifecycle.c and test_secrets.c: instances on databases of a role whose
# password is found nowhere else (a log must never show it), and a RabbitMQ
# vhost of their own, apart from the suite's events.
export LIFECYCLE_PG_PASSWORD
LIFECYCLE_PG_PASSWORD=pg-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
PGOPTIONS='-c client_min_messages=warning' runuser -u postgres -- \
  "$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" \
  -d postgres -c "DROP DATABASE IF EXISTS lifecycle_products_db WITH (FORCE)" \
  -c "DROP DATABASE IF EXISTS lifecycle_orders_db WITH (FORCE)" \
  -c "DROP ROLE IF EXISTS lifecycle" \
  -c "CREATE ROLE lifecycle LOGIN PASSWORD '$LIFECYCLE_PG_PASSWORD'" >/dev/null
for s in products orders; do
  pg_recreate_db "lifecycle_${s}_db" lifecycle
  export "LIFECYCLE_${s^^}_DATABASE_URL=postgres://lifecycle:$LIFECYCLE_PG_PASSWORD@127.0.0.1:$PG_PORT/lifecycle_${s}_db"
done
scripts/infra.sh vhost "$STATE" lifecycle >/dev/null
export LIFECYCLE_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/lifecycle
# test_faults.c: a products instance with FAULTS=on on a database and a
# RabbitMQ vhost of its own, so pausing its relay or its consumer holds
# nothing of the suite's services.
pg_recreate_db faults_db products
export FAULTS_DATABASE_URL=${PRODUCTS_DATABASE_URL%/*}/faults_db
scripts/infra.sh vhost "$STATE" faults >/dev/null
export FAULTS_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/faults
# A products database for the installed binary (test_service.c).
pg_recreate_db install_db products
export INSTALL_DATABASE_URL=${PRODUCTS_DATABASE_URL%/*}/install_db

export JWT_SECRET
JWT_SECRET=$(state_secret "$STATE")
# Every suite talks from 127.0.0.1 and the suites together send far more
# than RATE_LIMIT's default allows one client: a limit none of them reaches.
# test_ratelimit.c starts its own products with a small one.
export RATE_LIMIT=100000/second
export BIN_DIR=$BUILD
export SPARE_PORT=$((HTTP_BASE + 9))
# Twenty ports for what tests spawn, spare_port(i): 0-8 test_resilience.c,
# 9 test_relay.c, 10 test_metrics.c, 11 test_ratelimit.c, 12-13
# test_lifecycle.c, 14 test_secrets.c, 15 and 18 test_faults.c, 16-17
# test_connections.c, 18-19 test_abandoned.c (suites run one after the
# other, so two may share a port).
export SPARE_PORTS=$((HTTP_BASE + 10))
export OTLP_PORT=$((HTTP_BASE + 8))     # the tracing test's span receiver
export SERVICE_LOG_DIR=$STATE/logs       # <service>.log, for tests that read them
# Lets a test restart PostgreSQL under the running services.
export PG_RESTART_CMD="cd / && runuser -u postgres -- $PG_BIN/pg_ctl restart \
-D $STATE/pg/data -m fast -w -s -l $STATE/pg/postgres.log >/dev/null"
# Lets a test stop and start RabbitMQ under the running services.
export RABBITMQ_STOP_CMD="scripts/infra.sh stop $STATE rabbitmq >/dev/null"
export RABBITMQ_START_CMD="scripts/infra.sh start $STATE rabbitmq >/dev/null"

runner=()
if [[ ${VALGRIND:-} == 1 ]]; then
  runner=(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99)
fi

for s in $(services); do
  port=$(svc_port "$s" "$HTTP_BASE")
  url_var=${s^^}_DATABASE_URL
  SERVICE_HOST=127.0.0.1 SERVICE_PORT=$port DATABASE_URL=${!url_var} \
    LOG_LEVEL=${LOG_LEVEL:-info} RESERVATION_SWEEP_INTERVAL=200ms \
    RELEASE_RETRY_INTERVAL=200ms \
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP_PORT \
    OTEL_BSP_SCHEDULE_DELAY=100ms \
    "${runner[@]}" "$BUILD/$s" >"$STATE/logs/$s.log" 2>&1 &
  PIDS[$s]=$!
  export "${s^^}_URL=http://127.0.0.1:$port"
done
for s in $(services); do
  port=$(svc_port "$s" "$HTTP_BASE")
  if ! wait_ready "http://127.0.0.1:$port/health/ready" 60 "${PIDS[$s]}"; then
    echo "FAIL: $s did not become ready; last log lines:" >&2
    tail -n 20 "$STATE/logs/$s.log" >&2
    exit 1
  fi
done

echo "== integration tests"
"$BUILD/tests/integration"

# ---- the template (docs/new-service.md) ------------------------------------
# scripts/new-service's own checks, then `make new-service NAME=payments` in
# a scratch copy of this tree, built and tested against the servers above
# with its own payments_db; it stops what it started and drops what it made.
echo "== template: make new-service"
BUILD=$BUILD SAN=${SAN:-} scripts/check-new-service.sh "$STATE" "$HTTP_BASE"

echo "== make run + make demo + make chaos (short)"
cleanup # the suites are done: make run takes over their ports
((status == 0))
RUN_STATE_DIR=$STATE/demo RUN_PG_PORT=$PG_PORT RUN_AMQP_PORT=$AMQP_PORT \
  RUN_HTTP_BASE=$HTTP_BASE scripts/test-demo.sh

# ---- the compose stack (docs/deploy.md) ---------------------------------------
# Its images are built from the source tree, not from $BUILD: a sanitizer
# or valgrind run has nothing to add to it.
if [[ -n ${SAN:-} || -n ${VALGRIND:-} ]]; then
  echo "== make compose-test: left to the plain make test (its images do not use this build)"
elif [[ ${TEST_COMPOSE:-1} == 0 ]]; then
  # two trees testing at once would build the same image names
  echo "== make compose-test: not run (TEST_COMPOSE=0)"
else
  echo "== make compose-test"
  TEST_STATE_DIR=$STATE scripts/compose-test.sh
fi
