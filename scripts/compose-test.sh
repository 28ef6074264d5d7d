#!/usr/bin/env bash
# make compose-test (run by make test): the compose stack for real. Builds
# the images (cached ones are reused), brings docker-compose.yml up with
# scripts/compose.sh - Jaeger replaced by the span counter of
# docker-compose.otlpsink.yml - on ports and a project of its own, so it
# works beside make run and make compose-up, then against the containers:
#
#   hardening  each service container: read-only root file system, no
#              capabilities, no new privileges, the non-root user
#   story      make demo (scripts/demo.sh), inventory stopped and started
#              with docker-compose
#   restarts   postgres and rabbitmq restarted under a stream of orders: no
#              acknowledged order lost, every order confirmed, stock on hand
#              less exactly what the confirmed orders took, nothing reserved
#              beyond the attempts that were not answered 201
#   watching   Prometheus scrapes every service, has the rules loaded and
#              reaches Alertmanager, which holds the Watchdog alert; spans
#              of every service reached the span counter (after the
#              restarts: by then Prometheus has evaluated its rules)
#   drain      `docker-compose stop orders`: drained, exit 0, within its
#              stop_grace_period
#
# then `down --volumes`, and checks that nothing of the project is left:
# containers, networks, volumes, the API service and the health-check
# helper. Prints each phase's time, the images' sizes and the containers'
# memory after the story; keeps every container's log in STATE/stack.log.
# Exits non-zero on any failure, after tearing the stack down.
#
# Environment: TEST_STATE_DIR (.test; the stack's files in STATE/compose),
# TEST_COMPOSE_BASE (28000: a service whose port is 80NN by default on
# +NN - products +81, inventory +82, orders +83 -, Prometheus +90,
# Alertmanager +93, PostgreSQL +432, RabbitMQ +672 and its UI +673, the
# span counter +686), COMPOSE_ENGINE (as scripts/compose.sh),
# COMPOSE_TEST_KEEP (1: leave the stack up after the checks).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

STATE=$(realpath -m "${TEST_STATE_DIR:-.test}")/compose
BASE=${TEST_COMPOSE_BASE:-28000}
export COMPOSE_STATE_DIR=$STATE
export COMPOSE_PROJECT_NAME=microshop-test COMPOSE_OTLPSINK=1
export PROMETHEUS_PORT=$((BASE + 90)) ALERTMANAGER_PORT=$((BASE + 93)) \
  POSTGRES_PORT=$((BASE + 432)) RABBITMQ_PORT=$((BASE + 672)) \
  RABBITMQ_UI_PORT=$((BASE + 673)) JAEGER_UI_PORT=$((BASE + 686))
# Each service's port variable in docker-compose.yml (NAME_PORT, 80NN).
while IFS='=' read -r name def; do
  case $name in PROMETHEUS_PORT | ALERTMANAGER_PORT | POSTGRES_PORT | RABBITMQ_PORT | RABBITMQ_UI_PORT | JAEGER_UI_PORT) continue ;; esac
  if ((def < 8000 || def > 8999)); then
    echo "compose-test: $name's default port $def is not 80NN; give it a place under TEST_COMPOSE_BASE here" >&2
    exit 2
  fi
  export "$name=$((BASE + def - 8000))"
done < <(scripts/compose.sh ports)
PRODUCTS=http://127.0.0.1:$PRODUCTS_PORT
INVENTORY=http://127.0.0.1:$INVENTORY_PORT
ORDERS=http://127.0.0.1:$ORDERS_PORT
PROMETHEUS=http://127.0.0.1:$PROMETHEUS_PORT
ALERTMANAGER=http://127.0.0.1:$ALERTMANAGER_PORT
SPANS=http://127.0.0.1:$JAEGER_UI_PORT
WAIT=${COMPOSE_TEST_WAIT:-120} # bound of each wait, in seconds

FAILED=0
CHECKS=0
T0=${EPOCHREALTIME/./}
PHASE_T=$T0 PHASE_PREFIX='== compose-test: ' # lib.sh's phase
ok() {
  CHECKS=$((CHECKS + 1))
  echo "   ok  $*"
}
fail() {
  FAILED=1
  echo "   FAIL $*" >&2
}
die() { # a failure the rest cannot go on from
  fail "$*"
  exit 1
}

TMP=$(mktemp -d)
finish() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n ${STOP:-} ]] && : >"$STOP"
  wait 2>/dev/null || true
  if [[ ${COMPOSE_TEST_KEEP:-} == 1 && -r $STATE/env ]]; then
    echo "== compose-test: the stack stays up (COMPOSE_TEST_KEEP=1); COMPOSE_STATE_DIR=$STATE scripts/compose.sh down --volumes"
  elif [[ -d $STATE ]]; then
    # every container's log, for a failure to be read after the stack is gone
    [[ -z ${ENGINE:-} ]] || compose logs --no-color >"$STATE/stack.log" 2>&1 || true
    [[ -z ${ENGINE:-} ]] || CONTAINERS=$("$ENGINE" ps -a -q --no-trunc \
      --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" 2>/dev/null) || true
    scripts/compose.sh down --volumes || FAILED=1
    leftovers || FAILED=1
    phase "down"
  fi
  rm -rf "$TMP"
  ((rc == 0)) && rc=$FAILED
  local total=$(((${EPOCHREALTIME/./} - T0) / 1000000))
  if ((rc == 0)); then
    echo "== compose-test: $CHECKS checks passed in $total s"
  else
    echo "== compose-test: FAILED (after $total s)" >&2
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# After down: nothing of the project left, nor the helpers.
leftovers() {
  local left=0 what
  [[ -n ${ENGINE:-} ]] || return 0
  what=$("$ENGINE" ps -a -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" 2>/dev/null)
  [[ -z $what ]] || {
    echo "   FAIL containers of $COMPOSE_PROJECT_NAME left: $what" >&2
    left=1
  }
  what=$("$ENGINE" network ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" 2>/dev/null)
  [[ -z $what ]] || {
    echo "   FAIL networks of $COMPOSE_PROJECT_NAME left: $what" >&2
    left=1
  }
  what=$("$ENGINE" volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" 2>/dev/null)
  [[ -z $what ]] || {
    echo "   FAIL volumes of $COMPOSE_PROJECT_NAME left: $what" >&2
    left=1
  }
  for what in "$STATE"/pids/*.pid; do
    [[ -e $what ]] || continue
    echo "   FAIL $what is left" >&2
    left=1
  done
  if pgrep -f "$STATE/podman.sock" >/dev/null || pgrep -f "healthchecks $STATE" >/dev/null; then
    echo "   FAIL a helper of $STATE still runs: $(pgrep -af "$STATE" | head -n 3)" >&2
    left=1
  fi
  for what in ${CONTAINERS:-}; do # podman's monitors of its containers
    if pgrep -f -- "-c $what " >/dev/null; then
      echo "   FAIL a process still watches container ${what:0:12}: $(pgrep -af -- "-c $what " | cut -c1-80 | head -n 1)" >&2
      left=1
    fi
  done
  ((left == 0)) && echo "   ok  nothing of $COMPOSE_PROJECT_NAME left (containers, networks, volumes, API service, health-check helper, container monitors)"
  return "$left"
}

# until_ok SECONDS WHAT CMD...: runs CMD every half second until it succeeds.
# Says how long it took, when that was more than a moment.
until_ok() {
  local secs=$1 deadline=$((SECONDS + $1)) what=$2 t=$SECONDS
  shift 2
  until "$@"; do
    if ((SECONDS >= deadline)); then
      fail "$what (not within $secs s)"
      return 1
    fi
    sleep 0.5
  done
  ok "$what$( ((SECONDS - t < 2)) || echo " (after $((SECONDS - t)) s)")"
}
not() { ! "$@"; }
# check WHAT CMD...: ok if CMD succeeds, else a failure.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
get() { curl -fsS --max-time 10 "$@"; }

# ---- up -----------------------------------------------------------------------
echo "== compose-test: the stack up ($COMPOSE_PROJECT_NAME, ports $BASE+, state $STATE)"
scripts/compose.sh up | sed -n '/^compose:/p'
set -a
# shellcheck source=/dev/null # written by scripts/compose.sh up
. "$STATE/env"
set +a
read -r -a COMPOSE <<<"$COMPOSE_CMD"
compose() { "${COMPOSE[@]}" "$@"; }
mapfile -t SERVICES < <(compose config --services | grep -vxE 'postgres|rabbitmq|prometheus|alertmanager|jaeger')
PHASE_T=${EPOCHREALTIME/./}

# ---- hardening, checked in the running containers -----------------------------
echo "== compose-test: hardening of ${SERVICES[*]}"
for s in "${SERVICES[@]}"; do
  id=$(compose ps -q "$s")
  got=$("$ENGINE" inspect --format '{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}' "$id")
  check "$s: read-only root file system, user 10001 (inspect: $got)" \
    test "$got" = "true 10001:10001"
  # what the service's own process has, and a write to / from inside
  got=$("$ENGINE" exec "$id" sh -c 'id -u; sed -n "s/^CapEff:[[:space:]]*//p; s/^NoNewPrivs:[[:space:]]*//p" /proc/1/status; touch /written 2>/dev/null && echo writable || echo read-only' | tr '\n' ' ')
  check "$s: process 1 runs as 10001 with no capabilities and no_new_privs; / refuses writes ($got)" \
    test "$got" = "10001 0000000000000000 1 read-only "
done
phase "hardening"

# ---- the story ------------------------------------------------------------------
echo "== compose-test: the story (make demo against the stack)"
if DEMO_TARGET=compose NO_COLOR=1 scripts/demo.sh >"$STATE/demo.log" 2>&1; then
  ok "$(tail -n 1 "$STATE/demo.log")"
  # inventory's container came back on another address: orders' first
  # call after the circuit's open interval must reach it, not the old one
  check "the circuit closed on its first trial after inventory's restart" \
    not grep -q '^   not yet' "$STATE/demo.log"
else
  tail -n 25 "$STATE/demo.log" >&2
  fail "make demo against the compose stack (log: $STATE/demo.log)"
fi
phase "story"

echo "== compose-test: memory after the story"
"$ENGINE" stats --no-stream --format '{{.Name}} {{.MemUsage}}' |
  grep "^${COMPOSE_PROJECT_NAME}[-_]" | sed "s/^${COMPOSE_PROJECT_NAME}[-_]//; s/[-_]1 / /; s| / .*||" |
  sort | sed 's/^/   /'

# ---- restarts under a stream of orders ----------------------------------------------
echo "== compose-test: postgres and rabbitmq restarted under a stream of orders"
TOKEN=$(compose exec -T products microshop-service token --role admin --sub compose-test --ttl 900)
AUTH="Authorization: Bearer $TOKEN"
STOCK=100000
product=$(get -X POST -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"sku":"COMPOSE-TEST-'"$RANDOM$RANDOM"'","name":"Stream item","price_cents":100,"currency":"EUR"}' \
  "$PRODUCTS/api/v1/products" | jq -r .id) || die "cannot create a product"
stock_row() { get "$INVENTORY/api/v1/inventory/$product" >/dev/null 2>&1; }
until_ok 30 "inventory made the product's stock row (product.created)" stock_row || exit 1
get -X PUT -H "$AUTH" -H 'Content-Type: application/json' -d "{\"on_hand\":$STOCK}" \
  "$INVENTORY/api/v1/inventory/$product" >/dev/null || die "cannot stock the product"
customer=$(cat /proc/sys/kernel/random/uuid)
ORDER='{"customer_id":"'"$customer"'","items":[{"product_id":"'"$product"'","quantity":1}]}'

STOP=$TMP/stop
# stream N: POSTs orders until $STOP exists, a line "STATUS ID-or-ERROR"
# per answer; about 2 a second, so three streams stay under RATE_LIMIT's
# default 600/minute for one client (the test's, as the services see it).
stream() {
  local out=$TMP/stream.$1 code what
  while [[ ! -e $STOP ]]; do
    code=$(curl -sS -o "$TMP/body.$1" -w '%{http_code}' --max-time 15 \
      -H 'Content-Type: application/json' -d "$ORDER" "$ORDERS/api/v1/orders" 2>/dev/null) || true
    if [[ $code == 201 ]]; then
      what=$(jq -r .id "$TMP/body.$1" 2>/dev/null) || what=
    else
      what=$(jq -r '.error // empty' "$TMP/body.$1" 2>/dev/null) || what=
    fi
    echo "${code:-000} ${what:--}" >>"$out"
    sleep 0.4
  done
}
acked() { cat "$TMP"/stream.* 2>/dev/null | awk '$1 == 201' | wc -l; }
more_acked() { (($(acked) >= $1)); }
for i in 1 2 3; do stream "$i" & done
until_ok 60 "orders flowing" more_acked 20
healthy() { # healthy SERVICE
  [[ $("$ENGINE" inspect --format '{{.State.Health.Status}}' "$(compose ps -q "$1")") == healthy ]]
}
restart() { # restart SERVICE: docker-compose restart, then healthy again
  local t=${EPOCHREALTIME/./}
  compose restart "$1" >"$TMP/restart.log" 2>&1 || {
    cat "$TMP/restart.log" >&2
    fail "docker-compose restart $1"
    return
  }
  until_ok "$WAIT" "$1 restarted ($(((${EPOCHREALTIME/./} - t) / 1000)) ms) and healthy again" healthy "$1"
}
# One after the other: the circuits that postgres' restart opens in
# orders (products and inventory answer 503 meanwhile) recover while
# rabbitmq restarts.
restart postgres
restart rabbitmq
n=$(($(acked) + 20))
until_ok 90 "orders acknowledged again after both came back" more_acked "$n"
: >"$STOP"
wait
echo "   answers: $(cat "$TMP"/stream.* | awk '{ k = $1 == 201 ? $1 : $1 " " $2; n[k]++ }
  END { for (k in n) { printf "%s%s x%d", sep, k, n[k]; sep = ", " } }')"
awk '$1 == 201 { print $2 }' "$TMP"/stream.* | sort -u >"$TMP/acked"
ACKED=$(wc -l <"$TMP/acked")

# Every order of the customer, from orders' own list (keyset pages).
list_orders() {
  local after='' page
  : >"$TMP/listed"
  while :; do
    page=$(get "$ORDERS/api/v1/orders?customer_id=$customer&limit=100${after:+&after=$after}") || return 1
    jq -r '.items[] | "\(.id) \(.status)"' <<<"$page" >>"$TMP/listed"
    after=$(jq -r '.next // empty' <<<"$page")
    [[ -n $after ]] || break
  done
}
all_confirmed() {
  list_orders || return 1
  ! grep -qv ' confirmed$' "$TMP/listed"
}
until_ok "$WAIT" "every order placed is confirmed" all_confirmed ||
  echo "   not confirmed: $(grep -v ' confirmed$' "$TMP/listed" | awk '{ n[$2]++ } END { for (s in n) printf "%s x%d ", s, n[s] }')" >&2
lost=$(cut -d' ' -f1 "$TMP/listed" | sort -u | comm -23 "$TMP/acked" -)
check "no acknowledged order lost: all $ACKED answered 201 are there" test -z "$lost"
[[ -z $lost ]] || echo "   missing: $(wc -w <<<"$lost") of $ACKED, e.g. $(head -n 1 <<<"$lost")" >&2
CONFIRMED=$(grep -c ' confirmed$' "$TMP/listed" || true)
# Stock: what the confirmed orders took is gone from on_hand, exactly. A
# unit may stay reserved only for an attempt its client was not told
# succeeded: a reservation made after orders had given up waiting for it
# is held until orders gives it back, RESERVATION_GRACE (1 minute) later,
# which is not waited for here - never for an order.
FAILED_ATTEMPTS=$(cat "$TMP"/stream.* | awk '$1 != 201' | wc -l)
stock_settled() {
  STOCK_NOW=$(get "$INVENTORY/api/v1/inventory/$product" | jq -r '"\(.on_hand) \(.reserved)"') || return 1
  [[ ${STOCK_NOW% *} == $((STOCK - CONFIRMED)) ]] && ((${STOCK_NOW#* } <= FAILED_ATTEMPTS))
}
STOCK_NOW=
until_ok "$WAIT" "stock: $STOCK - $CONFIRMED confirmed = $((STOCK - CONFIRMED)) on hand, no oversell" stock_settled ||
  echo "   stock is on_hand reserved = $STOCK_NOW" >&2
echo "   reserved after the restarts: ${STOCK_NOW#* } (held for attempts answered other than 201: at most $FAILED_ATTEMPTS)"
phase "restarts"

# ---- Prometheus, Alertmanager, spans --------------------------------------------
echo "== compose-test: Prometheus, Alertmanager, spans"
targets_up() {
  local want n
  want=$(printf '%s\n' "${SERVICES[@]}" prometheus | sort | tr '\n' ' ')
  n=$(get "$PROMETHEUS/api/v1/targets" 2>/dev/null |
    jq -r '[.data.activeTargets[] | select(.health == "up") | .labels.job] | sort | join(" ")') || return 1
  [[ "$n " == "$want" ]]
}
until_ok "$WAIT" "Prometheus scrapes ${SERVICES[*]} and itself, every target up" targets_up
rules_loaded() {
  local want got
  want=$(sed -n 's/^[[:space:]]*- \(alert\|record\):.*/x/p' deploy/prometheus/rules/*.yml | wc -l)
  got=$(get "$PROMETHEUS/api/v1/rules" | jq '[.data.groups[].rules[]] | length') || return 1
  RULES="$got of $want"
  ((got == want))
}
RULES=
check "Prometheus has every rule of deploy/prometheus/rules loaded" rules_loaded
echo "   rules loaded: $RULES"
am_connected() {
  get "$PROMETHEUS/api/v1/alertmanagers" |
    jq -e '.data.activeAlertmanagers | map(.url) | any(test("alertmanager:9093"))' >/dev/null
}
until_ok "$WAIT" "Prometheus reaches Alertmanager (alertmanager:9093 active)" am_connected
watchdog() {
  get "$ALERTMANAGER/api/v2/alerts?filter=alertname%3D%22Watchdog%22" | jq -e 'length > 0' >/dev/null
}
until_ok "$WAIT" "Alertmanager holds the Watchdog alert: alerts get there" watchdog
spans_of_all() {
  local counts s
  counts=$(get "$SPANS/") || return 1
  SPAN_COUNTS=$(jq -c .services <<<"$counts")
  for s in "${SERVICES[@]}"; do
    jq -e --arg s "$s" '.services[$s] > 0' <<<"$counts" >/dev/null || return 1
  done
}
SPAN_COUNTS=
# A request to every service, in case one was not in the story (a service
# `make new-service` made): a 404 is traced like any other request.
for s in "${SERVICES[@]}"; do
  port=${s^^}_PORT
  curl -s -o /dev/null --max-time 10 "http://127.0.0.1:${!port}/api/v1/compose-test-probe" || true
done
until_ok 30 "spans of ${SERVICES[*]} reached the OTLP receiver" spans_of_all
echo "   spans per service: $SPAN_COUNTS"
phase "watching"

# ---- drain on docker-compose stop ----------------------------------------------------
echo "== compose-test: docker-compose stop orders"
id=$(compose ps -q orders)
grace=$(compose config | awk '/^  orders:/ { o = 1; next } /^  [a-z]/ { o = 0 } o && /stop_grace_period:/ { print $2 }')
grace_s=${grace%s}
[[ $grace_s =~ ^[0-9]+$ ]] || die "orders' stop_grace_period '$grace' is not in seconds"
t=${EPOCHREALTIME/./}
compose stop orders >/dev/null 2>&1 || fail "docker-compose stop orders"
ms=$(((${EPOCHREALTIME/./} - t) / 1000))
got=$("$ENGINE" inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$id")
check "orders exited 0 (state: $got)" test "$got" = "exited 0"
check "within its stop_grace_period: $ms ms of ${grace_s} s" test "$ms" -lt $((grace_s * 1000))
compose logs --no-color orders 2>/dev/null | grep -F '"msg":"' | tail -n 8 >"$TMP/last"
# The drain: a request in flight is never cut. Idle keep-alive connections
# (Prometheus' between scrapes) are left to the deadline on purpose
# (docs/lifecycle.md), so "drain timeout" is fine with none in flight.
drained() {
  grep -q '"msg":"shutting down"' "$TMP/last" && grep -q '"msg":"stopped"' "$TMP/last" &&
    ! grep '"msg":"drain timeout' "$TMP/last" | grep -qv '"in_flight":0'
}
check "it drained: shutting down ... stopped, no request in flight cut" drained
echo "   its last messages: $(grep -o '"msg":"[^"]*"' "$TMP/last" | tr '\n' ' ')"
phase "drain"

echo "== compose-test: image sizes"
for img in $(compose config | sed -n 's/^    image: //p' | sort -u); do
  size=$("$ENGINE" image inspect --format '{{.Size}}' "$img" 2>/dev/null) || continue
  printf '   %-32s %4d MB\n' "$img" $((size / 1000000))
done
