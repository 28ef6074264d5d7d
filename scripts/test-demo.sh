#!/usr/bin/env bash
# make test's last step: `make run`, `make demo` and `make chaos` as a
# user runs them. Starts scripts/run.sh in the background (state folder
# and ports from RUN_STATE_DIR, RUN_PG_PORT, RUN_AMQP_PORT, RUN_HTTP_BASE,
# which the caller must set), waits until its services are ready, runs
# scripts/demo.sh against it - which fails on any step that does not show
# what it should - then the short chaos schedule (CHAOS_SHORT=1
# scripts/chaos.sh: each fault 3 s under load, then its invariants), then
# stops run.sh with SIGTERM, as Ctrl-C would, and checks that it stopped
# everything it started, the inventory the demo and the products chaos
# had it restart included. One setting is tuned: orders'
# RESERVATION_GRACE, 5 s instead of 1 min, so that chaos settles in
# seconds; the story runs on make run's defaults, orders' circuit to
# inventory included (open 1 s at first, doubling with each failed
# trial). Logs: STATE/run.log, STATE/demo.log and STATE/chaos.log.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

: "${RUN_STATE_DIR:?}" "${RUN_PG_PORT:?}" "${RUN_AMQP_PORT:?}" "${RUN_HTTP_BASE:?}"
# A user's shell, not the test suite's: none of its settings (JWT_SECRET,
# RATE_LIMIT, the service URLs, ...) may reach make run.
if [[ -z ${TEST_DEMO_CLEAN_ENV:-} ]]; then
  exec env -i TEST_DEMO_CLEAN_ENV=1 PATH="$PATH" HOME="${HOME:-/root}" \
    LANG="${LANG:-C.UTF-8}" RUN_STATE_DIR="$RUN_STATE_DIR" \
    RUN_PG_PORT="$RUN_PG_PORT" RUN_AMQP_PORT="$RUN_AMQP_PORT" \
    RUN_HTTP_BASE="$RUN_HTTP_BASE" ${BUILD:+BUILD="$BUILD"} ${SAN:+SAN="$SAN"} \
    RESERVATION_GRACE=5s "$0"
fi
STATE=$(realpath -m "$RUN_STATE_DIR")
mkdir -p "$STATE"

run_pid=
stop_run() {
  [[ -z $run_pid ]] || stop_pid "$run_pid" 90 || true
  run_pid=
}
trap stop_run EXIT
trap 'exit 130' INT TERM

scripts/run.sh >"$STATE/run.log" 2>&1 </dev/null &
run_pid=$!
for s in $(services); do
  if ! wait_ready "http://127.0.0.1:$(svc_port "$s" "$RUN_HTTP_BASE")/health/ready" \
    120 "$run_pid"; then
    echo "FAIL: make run did not bring $s up; the end of $STATE/run.log:" >&2
    tail -n 30 "$STATE/run.log" >&2
    exit 1
  fi
done

if ! scripts/demo.sh >"$STATE/demo.log" 2>&1; then
  echo "FAIL: make demo; the end of $STATE/demo.log and of $STATE/run.log:" >&2
  tail -n 25 "$STATE/demo.log" >&2
  tail -n 30 "$STATE/run.log" >&2
  exit 1
fi
tail -n 1 "$STATE/demo.log"

if ! CHAOS_SHORT=1 CHAOS_SETTLE=90 scripts/chaos.sh >"$STATE/chaos.log" 2>&1; then
  echo "FAIL: make chaos; the end of $STATE/chaos.log and of $STATE/run.log:" >&2
  tail -n 40 "$STATE/chaos.log" >&2
  tail -n 30 "$STATE/run.log" >&2
  exit 1
fi
sed -n '/^make chaos: [0-9]/,$p' "$STATE/chaos.log"

# What run.sh runs now - inventory is the one it started again - must all
# go with it: its own pid file and one per service.
pids=()
for f in "$STATE"/pids/*.pid; do pids+=("$(cat "$f")"); done
want=$(($(services | wc -l) + 1))
((${#pids[@]} == want)) || {
  echo "FAIL: $STATE/pids holds ${#pids[@]} pid files, not $want" >&2
  exit 1
}
rc=0
stop_pid "$run_pid" 90 || rc=$?
run_pid=
if ((rc != 0)); then
  echo "FAIL: make run exited with status $rc on SIGTERM" >&2
  exit 1
fi
for p in "${pids[@]}"; do
  if kill -0 "$p" 2>/dev/null; then
    echo "FAIL: pid $p ($(tr '\0' ' ' <"/proc/$p/cmdline")) outlived make run" >&2
    exit 1
  fi
done
if scripts/infra.sh status "$STATE" | grep -q 'running on'; then
  echo "FAIL: make run left PostgreSQL or RabbitMQ running in $STATE" >&2
  exit 1
fi
echo "make run stopped all it started (services, PostgreSQL, RabbitMQ)"
