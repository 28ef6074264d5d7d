#!/usr/bin/env bash
# make demo: tells microshop's story against the suite `make run` or
# `make compose-up` is running, one HTTP call at a time - products created
# and stocked, orders placed and confirmed by events, one cancelled, stock
# run out (409), inventory stopped (orders' circuit opens: 503 +
# Retry-After, /health degraded, circuit_breaker_state; each failed trial
# keeps it open twice as long) and started again (the next trial closes
# the circuit). Every step checks what came back and the script
# exits 1 at the first surprise, so make test runs it too, against both
# (scripts/test-demo.sh, scripts/compose-test.sh).
#
# DEMO_TARGET says which suite: run, compose, or auto (the default): a live
# make run session if there is one, else a compose stack of make
# compose-up.
#  - make run: found the way run.sh places it: RUN_STATE_DIR (.run) for the
#    JWT secret and the PID files, RUN_HTTP_BASE (8080: products 8081,
#    inventory 8082, orders 8083), BUILD (build) for the token command.
#    Inventory is stopped by the PID in STATE/pids/inventory.pid, held down
#    by STATE/pids/inventory.hold, and run.sh starts it again once the hold
#    file is gone - so the make run session stays whole and Ctrl-C there
#    still stops everything.
#  - compose: found through COMPOSE_STATE_DIR (.compose)/env, which
#    scripts/compose.sh up writes (ports, project, engine). The token comes
#    from the products container; inventory is stopped with
#    `docker-compose stop inventory` and started with `docker-compose start`.
# DEMO_TIMEOUT (30) bounds each wait, in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

run_session
TIMEOUT=${DEMO_TIMEOUT:-30}
COMPOSE_ENV=$(realpath -m "${COMPOSE_STATE_DIR:-.compose}")/env

# ---- output -----------------------------------------------------------------
if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
  B=$'\e[1m' DIM=$'\e[2m' RED=$'\e[31m' GRN=$'\e[32m' YEL=$'\e[33m'
  CYN=$'\e[36m' OFF=$'\e[0m'
else
  B='' DIM='' RED='' GRN='' YEL='' CYN='' OFF=''
fi
WIDTH=150 # a body longer than this is cut
# What the answers show of themselves (jq filters; the rest is elided).
V_PRODUCT='{id,sku,price_cents,currency,available}'
V_ORDER='{id,status,items:[.items[]|{quantity,unit_price_cents}],total_cents,currency}'
V_HEALTH='{status,checks:{inventory:.checks.inventory}}'
V_PROBLEM='{status,error,detail}+(if .items then {items} else {} end)'

CHECKS=0
STEP=0

die() { # not a failed step: the demo cannot start at all
  echo "make demo: $*" >&2
  exit 1
}
step() {
  STEP=$((STEP + 1))
  printf '\n%s%d. %s%s\n' "$B" "$STEP" "$*" "$OFF"
}
say() { printf '   %s\n' "$*"; }
ok() {
  CHECKS=$((CHECKS + 1))
  printf '   %s✓ %s%s\n' "$GRN" "$*" "$OFF"
}
fail() {
  printf '   %s✗ %s%s\n' "$RED" "$*" "$OFF"
  printf '\n%smake demo: the story went wrong at step %d (%d checks passed)%s\n' \
    "$RED" "$STEP" "$CHECKS" "$OFF" >&2
  exit 1
}
trim() { # trim TEXT [JQ]: compact JSON (JQ's view of it), cut to WIDTH
  local s
  if [[ -n ${2:-} ]] && s=$(jq -c "$2" 2>/dev/null <<<"$1") && [[ -n $s ]]; then
    s="$s …"
  else
    s=$(jq -c . 2>/dev/null <<<"$1") || s=$1
  fi
  s=${s//$'\n'/ }
  ((${#s} <= WIDTH)) || s="${s:0:WIDTH}…"
  printf '%s' "$s"
}
status_color() {
  case $1 in
  2*) printf '%s' "$GRN" ;;
  4*) printf '%s' "$YEL" ;;
  *) printf '%s' "$RED" ;;
  esac
}

# ---- HTTP -------------------------------------------------------------------
TMP=$(mktemp -d)
HOLD=
on_exit() {
  # A held inventory must never outlive the demo: run.sh restarts it.
  [[ -z $HOLD ]] || rm -f "$HOLD"
  rm -rf "$TMP"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# http METHOD URL [BODY [HEADER...]]: STATUS (000: no answer) and RESP.
http() {
  local method=$1 url=$2 body=${3:-} args=() h
  shift $(($# < 3 ? $# : 3))
  for h in "$@"; do args+=(-H "$h"); done
  [[ -z $body ]] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
  STATUS=$(curl -sS -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
    --max-time 10 -X "$method" "${args[@]}" "$url" 2>"$TMP/curl") || true
  [[ $STATUS =~ ^[0-9]{3}$ ]] || STATUS=000
  RESP=$(cat "$TMP/body" 2>/dev/null || true)
}
# call METHOD URL [BODY [HEADER...]]: http, showing the call and the answer
# (the members VIEW selects, a jq filter, when it is set).
call() {
  local shown=$2
  printf '   %s%s %s%s\n' "$CYN" "$1" "$shown" "$OFF"
  [[ -z ${3:-} ]] || printf '     %s%s%s\n' "$DIM" "$(trim "$3")" "$OFF"
  http "$@"
  answer
}
answer() {
  local extra='' view=${VIEW:-}
  [[ $(header Content-Type) != application/problem+json* ]] || view=$V_PROBLEM
  if [[ $STATUS == 000 ]]; then
    printf '   %s← no answer%s %s\n' "$RED" "$OFF" "$(head -c 200 "$TMP/curl")"
    return
  fi
  [[ -z $(header Retry-After) ]] || extra="  Retry-After: $(header Retry-After)"
  printf '   ← %s%s%s%s  %s%s%s\n' "$(status_color "$STATUS")" "$B$STATUS" \
    "$OFF" "$extra" "$DIM" "$(trim "$RESP" "$view")" "$OFF"
}
header() { # the value of a response header, or nothing
  tr -d '\r' <"$TMP/headers" 2>/dev/null | sed -n "s/^$1: *//Ip" | tail -n 1
}
field() { jq -r "$1" <<<"$RESP" 2>/dev/null || true; }
expect() { # expect STATUS [what it means]
  [[ $STATUS == "$1" ]] || fail "expected $1${2:+ ($2)}, got $STATUS"
  ok "${2:-$1}"
}
expect_field() { # expect_field JQ VALUE [what it means]
  local v
  v=$(field "$1")
  [[ $v == "$2" ]] || fail "expected $1 = $2${3:+ ($3)}, got ${v:-nothing}"
  ok "${3:-$1 = $2}"
}

# until_field URL JQ VALUE WHAT: GET URL until JQ gives VALUE, showing each
# value it passes through; at most TIMEOUT seconds.
until_field() {
  local url=$1 jqx=$2 want=$3 what=$4 last='' v start now ms
  start=${EPOCHREALTIME/./}
  printf '   %sGET %s%s  %s(until %s is %s)%s\n' "$CYN" "$url" "$OFF" "$DIM" \
    "$jqx" "$want" "$OFF"
  while :; do
    http GET "$url"
    v=$([[ $STATUS == 200 ]] && field "$jqx" || echo "HTTP $STATUS")
    now=${EPOCHREALTIME/./}
    ms=$(((now - start) / 1000))
    if [[ $v != "$last" ]]; then
      printf '   ← %s  %s%s = %s%s  %sat %d.%03d s%s\n' "$STATUS" "$B" "$jqx" \
        "$v" "$OFF" "$DIM" $((ms / 1000)) $((ms % 1000)) "$OFF"
      last=$v
    fi
    if [[ $v == "$want" ]]; then
      ok "$what"
      return
    fi
    ((ms < TIMEOUT * 1000)) || fail "$what: still $jqx = $v after $TIMEOUT s"
    # Often at first (events take milliseconds), then gently.
    if ((ms < 1000)); then sleep 0.05; else sleep 0.25; fi
  done
}

# wait_retry_after: sleeps out what is left of the last Retry-After
# ($retry_after seconds, told at $told_at), as a client should; a countdown
# on a terminal.
wait_retry_after() {
  local left_ms i
  left_ms=$((retry_after * 1000 - (${EPOCHREALTIME/./} - told_at) / 1000))
  ((left_ms > 0)) || left_ms=0
  say "waiting out the last Retry-After ($retry_after s, $(((left_ms + 999) / 1000)) s left), as a client should"
  sleep "0.$(printf '%03d' $((left_ms % 1000)))"
  for ((i = left_ms / 1000; i > 0; i--)); do
    [[ ! -t 1 ]] || printf '\r   %s%3d s%s' "$DIM" "$i" "$OFF"
    sleep 1
  done
  [[ ! -t 1 ]] || printf '\r%10s\r' ''
}

# metric NAME{LABELS}: its value on orders' /metrics (nothing if absent).
metric() {
  curl -sS --max-time 10 "$ORDERS/metrics" 2>/dev/null |
    awk -v s="$1" 'index($0, s " ") == 1 { print $2 }'
}
# Orders' attempts that went to inventory and got no answer (refused,
# unreachable, timed out): the calls an open circuit refuses are not
# among them.
inventory_unanswered() {
  curl -sS --max-time 10 "$ORDERS/metrics" 2>/dev/null | awk '
    index($0, "http_client_requests_total{target=\"inventory\",status=\"error\"} ") == 1 ||
    index($0, "http_client_requests_total{target=\"inventory\",status=\"timeout\"} ") == 1 { n += $2 }
    END { printf "%d\n", n }'
}
show_metric() {
  printf '   %sGET %s/metrics%s  %s| grep %s%s\n' "$CYN" "$ORDERS" "$OFF" "$DIM" "$1" "$OFF"
  printf '   ← %s%s %s%s\n' "$B" "$1" "$(metric "$1")" "$OFF"
}

is_program() { # is_program PID NAME: the process runs a binary called NAME
  local argv0
  argv0=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | head -n 1)
  [[ ${argv0##*/} == "$2" ]]
}

# ---- which suite, and is it there? -------------------------------------------
for tool in curl jq; do
  command -v "$tool" >/dev/null || die "$tool is missing; run scripts/deps.sh (as root)"
done
TARGET=${DEMO_TARGET:-auto}
if [[ $TARGET == auto ]]; then
  TARGET=run
  [[ -n $(pid_of "$PID_DIR/run.pid") || ! -r $COMPOSE_ENV ]] || TARGET=compose
fi
case $TARGET in
run)
  START_HINT="start it with \`make run\` in another terminal (same RUN_HTTP_BASE, RUN_STATE_DIR)"
  WHERE="make run in $STATE"
  ;;
compose)
  [[ -r $COMPOSE_ENV ]] || die "no compose stack: $COMPOSE_ENV is missing - start one with \`make compose-up\`"
  set -a
  # shellcheck source=/dev/null # written by scripts/compose.sh up
  . "$COMPOSE_ENV"
  set +a
  read -r -a COMPOSE <<<"$COMPOSE_CMD"
  PRODUCTS=http://127.0.0.1:$PRODUCTS_PORT
  INVENTORY=http://127.0.0.1:$INVENTORY_PORT
  ORDERS=http://127.0.0.1:$ORDERS_PORT
  START_HINT="is the compose stack of $COMPOSE_ENV up? (make compose-up)"
  WHERE="the compose stack $COMPOSE_PROJECT_NAME ($ENGINE)"
  ;;
*) die "DEMO_TARGET=$TARGET is not run, compose or auto" ;;
esac
for s in products inventory orders; do
  url=${s^^}
  url=${!url}/health/ready
  curl -fsS -o /dev/null --max-time 3 "$url" 2>/dev/null ||
    die "the suite is not running: no answer from $s at $url - $START_HINT"
done

# An admin token: from make run's binary and secret, or from the products
# container (its JWT_SECRET stays there).
if [[ $TARGET == run ]]; then
  run_pid=$(pid_of "$PID_DIR/run.pid")
  inv_pid=$(pid_of "$PID_DIR/inventory.pid")
  if [[ -z $run_pid || -z $inv_pid ]] || ! is_program "$inv_pid" inventory; then
    die "no live make run session in $STATE (pids/ names none): was the suite started by \`make run\` with this RUN_STATE_DIR?"
  fi
  TOKEN=$(run_admin_token demo 900 2>"$TMP/token") || die "$(head -n 1 "$TMP/token")"
  TOKEN_FROM="\`$BUILD/products token\` (JWT_SECRET from $STATE/jwt_secret)"
else
  TOKEN=$("${COMPOSE[@]}" exec -T products microshop-service token --role admin \
    --sub demo --ttl 900 2>"$TMP/token") ||
    die "cannot mint an admin token in the products container: $(head -n 1 "$TMP/token")"
  TOKEN_FROM="\`${COMPOSE[*]} exec products microshop-service token\`"
fi
AUTH="Authorization: Bearer $TOKEN"

# Inventory stopped and started again, the way its suite runs it.
stop_inventory() {
  local deadline=$((SECONDS + TIMEOUT)) id code
  if [[ $TARGET == compose ]]; then
    id=$("${COMPOSE[@]}" ps -q inventory)
    [[ -n $id ]] || fail "the compose stack has no inventory container"
    printf '   %s$ %s stop inventory%s\n' "$CYN" "${COMPOSE[*]}" "$OFF"
    "${COMPOSE[@]}" stop inventory >"$TMP/stop" 2>&1 || fail "$(tail -n 1 "$TMP/stop")"
    code=$("$ENGINE" inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$id")
    [[ $code == "exited 0" ]] || fail "inventory's container is '$code', not 'exited 0'"
    ok "inventory has stopped (drained, exit 0)"
    return
  fi
  inv_pid=$(pid_of "$PID_DIR/inventory.pid")
  if [[ -z $inv_pid ]] || ! is_program "$inv_pid" inventory; then
    fail "$PID_DIR/inventory.pid names no running inventory"
  fi
  HOLD=$PID_DIR/inventory.hold
  : >"$HOLD" # run.sh keeps it down while this file exists
  printf '   %s$ kill -TERM %s%s  %s(inventory, from %s; held by %s)%s\n' "$CYN" \
    "$inv_pid" "$OFF" "$DIM" "$PID_DIR/inventory.pid" "${HOLD##*/}" "$OFF"
  kill -TERM "$inv_pid"
  while kill -0 "$inv_pid" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "inventory (pid $inv_pid) still runs after $TIMEOUT s"
    sleep 0.1
  done
  ok "inventory has stopped (drained, exit)"
}
start_inventory() {
  local deadline=$((SECONDS + TIMEOUT)) new_pid
  if [[ $TARGET == compose ]]; then
    printf '   %s$ %s start inventory%s\n' "$CYN" "${COMPOSE[*]}" "$OFF"
    "${COMPOSE[@]}" start inventory >"$TMP/start" 2>&1 || fail "$(tail -n 1 "$TMP/start")"
    until curl -fsS -o /dev/null --max-time 2 "$INVENTORY/health/ready" 2>/dev/null; do
      ((SECONDS < deadline)) || fail "inventory not ready in $TIMEOUT s"
      sleep 0.1
    done
    ok "inventory's container is back and ready"
    return
  fi
  printf '   %s$ rm %s%s  %s(run.sh starts inventory the way it started it)%s\n' \
    "$CYN" "$HOLD" "$OFF" "$DIM" "$OFF"
  rm -f "$HOLD"
  HOLD=
  while :; do
    new_pid=$(pid_of "$PID_DIR/inventory.pid")
    [[ -z $new_pid || $new_pid == "$inv_pid" ]] || break
    ((SECONDS < deadline)) || fail "run.sh did not start inventory again in $TIMEOUT s"
    sleep 0.1
  done
  wait_ready "$INVENTORY/health/ready" "$TIMEOUT" "$new_pid" ||
    fail "inventory (pid $new_pid) not ready in $TIMEOUT s"
  ok "inventory is back (pid $new_pid, recorded in pids/inventory.pid) and ready"
}

TAG=$(cut -c1-8 /proc/sys/kernel/random/uuid)
CUSTOMER=$(cat /proc/sys/kernel/random/uuid)
printf '%smicroshop, the story%s - against %s\n' "$B" "$OFF" "$WHERE"
say "products $PRODUCTS, inventory $INVENTORY, orders $ORDERS"
say "an admin token from $TOKEN_FROM"

# ---- 1. the catalogue -------------------------------------------------------
step "Two products in the catalogue (admin token)"
VIEW=$V_PRODUCT call POST "$PRODUCTS/api/v1/products" \
  '{"sku":"DEMO-MUG-'"$TAG"'","name":"Blue mug","price_cents":1299,"currency":"EUR"}' "$AUTH"
expect 201 "201 Created"
MUG=$(field .id)
VIEW=$V_PRODUCT call POST "$PRODUCTS/api/v1/products" \
  '{"sku":"DEMO-POSTER-'"$TAG"'","name":"Signed poster","price_cents":2500,"currency":"EUR"}' "$AUTH"
expect 201 "201 Created"
POSTER=$(field .id)
say "product.created reaches inventory through the outbox, RabbitMQ and its inbox:"
until_field "$INVENTORY/api/v1/inventory/$MUG" .on_hand 0 \
  "inventory made a stock row for the mug from product.created"

# ---- 2. stock ---------------------------------------------------------------
step "Stock them: 10 mugs, 3 posters"
call PUT "$INVENTORY/api/v1/inventory/$MUG" '{"on_hand":10}' "$AUTH"
[[ $STATUS == 200 || $STATUS == 201 ]] || fail "expected 200 or 201, got $STATUS"
ok "on_hand = 10"
call PUT "$INVENTORY/api/v1/inventory/$POSTER" '{"on_hand":3}' "$AUTH"
[[ $STATUS == 200 || $STATUS == 201 ]] || fail "expected 200 or 201, got $STATUS"
ok "on_hand = 3"
say "inventory.stock_changed flows back to products' \`available\`:"
until_field "$PRODUCTS/api/v1/products/$POSTER" .available true \
  "products shows the poster available (no call to inventory on reads)"

# ---- 3. an order -------------------------------------------------------------
step "An order: 2 mugs and a poster"
VIEW=$V_ORDER call POST "$ORDERS/api/v1/orders" \
  '{"customer_id":"'"$CUSTOMER"'","items":[{"product_id":"'"$MUG"'","quantity":2},{"product_id":"'"$POSTER"'","quantity":1}]}' \
  "Idempotency-Key: demo-$TAG-1"
expect 201 "201 Created: priced by products, stock reserved at inventory"
expect_field .status pending "placed pending"
expect_field .total_cents 5098 "total 2 × 12.99 + 25.00 = 50.98 EUR"
ORDER1=$(field .id)
say "order.created -> inventory confirms the reservation -> inventory.confirmed -> orders:"
until_field "$ORDERS/api/v1/orders/$ORDER1" .status confirmed "the order is confirmed"
call GET "$INVENTORY/api/v1/inventory/$MUG"
expect_field '"\(.on_hand)/\(.reserved)"' 8/0 "mugs: 8 on hand, none reserved"

# ---- 4. a cancellation --------------------------------------------------------
step "Another order, cancelled: its stock comes back"
VIEW=$V_ORDER call POST "$ORDERS/api/v1/orders" \
  '{"customer_id":"'"$CUSTOMER"'","items":[{"product_id":"'"$MUG"'","quantity":3}]}'
expect 201 "201 Created"
ORDER2=$(field .id)
until_field "$ORDERS/api/v1/orders/$ORDER2" .status confirmed "confirmed"
call GET "$INVENTORY/api/v1/inventory/$MUG"
expect_field .on_hand 5 "mugs: 5 on hand"
VIEW=$V_ORDER call POST "$ORDERS/api/v1/orders/$ORDER2/cancel"
expect 200 "200 OK"
expect_field .status cancelled "cancelled"
say "order.cancelled (and orders' own call) release the reservation at inventory:"
until_field "$INVENTORY/api/v1/inventory/$MUG" .on_hand 8 "the 3 mugs are back on hand"

# ---- 5. out of stock --------------------------------------------------------
step "The last two posters, then one too many"
VIEW=$V_ORDER call POST "$ORDERS/api/v1/orders" \
  '{"customer_id":"'"$CUSTOMER"'","items":[{"product_id":"'"$POSTER"'","quantity":2}]}'
expect 201 "201 Created: the last two"
VIEW=$V_ORDER call POST "$ORDERS/api/v1/orders" \
  '{"customer_id":"'"$CUSTOMER"'","items":[{"product_id":"'"$POSTER"'","quantity":1}]}'
expect 409 "409 Conflict: nothing persisted"
expect_field .error insufficient_stock "error insufficient_stock"
expect_field '.items[0] | "\(.requested) requested, \(.available) available"' \
  "1 requested, 0 available" "the short item listed: 1 requested, 0 available"
until_field "$PRODUCTS/api/v1/products/$POSTER" .available false \
  "products shows the poster unavailable"

# ---- 6. inventory goes away ---------------------------------------------------
step "Inventory stops: orders' circuit opens"
VIEW=$V_HEALTH call GET "$ORDERS/health"
expect_field .checks.inventory.circuit closed "circuit to inventory closed"
stop_inventory
say "orders retries each reservation (backoff with jitter); 5 failures in a row open the circuit:"
for _ in 1 2 3 4 5 6 7 8 9 10; do
  VIEW=$V_ORDER call POST "$ORDERS/api/v1/orders" \
    '{"customer_id":"'"$CUSTOMER"'","items":[{"product_id":"'"$MUG"'","quantity":1}]}'
  [[ $STATUS == 503 && -n $(header Retry-After) ]] ||
    fail "expected 503 with Retry-After, got $STATUS"
  ok "503 dependency_unavailable, Retry-After $(header Retry-After), nothing stored"
  retry_after=$(header Retry-After) told_at=${EPOCHREALTIME/./}
  http GET "$ORDERS/health"
  [[ $(field .checks.inventory.circuit) != open ]] || break
done
VIEW=$V_HEALTH call GET "$ORDERS/health"
expect 200 "200: orders still serves"
expect_field .status degraded "status degraded"
expect_field .checks.inventory.circuit open "circuit to inventory open"
show_metric 'circuit_breaker_state{target="inventory"}'
[[ $(metric 'circuit_breaker_state{target="inventory"}') == 2 ]] ||
  fail "expected circuit_breaker_state 2 (open)"
ok "circuit_breaker_state 2 (open)"
VIEW=$V_ORDER call GET "$ORDERS/api/v1/orders/$ORDER1"
expect 200 "reads go on: the first order is still there"

# ---- 7. inventory stays away ---------------------------------------------------
step "Inventory stays down: each failed trial keeps the circuit open twice as long"
say "once its open interval is over, the circuit lets one call through as a trial; Retry-After says when:"
first_wait=$retry_after
for _ in 1 2; do
  wait_retry_after
  before=$(inventory_unanswered)
  VIEW=$V_ORDER call POST "$ORDERS/api/v1/orders" \
    '{"customer_id":"'"$CUSTOMER"'","items":[{"product_id":"'"$MUG"'","quantity":1}]}'
  [[ $STATUS == 503 && -n $(header Retry-After) ]] ||
    fail "expected 503 with Retry-After, got $STATUS"
  retry_after=$(header Retry-After) told_at=${EPOCHREALTIME/./}
  tried=$(($(inventory_unanswered) - before))
  ((tried == 1)) ||
    fail "expected the trial, one attempt at inventory (http_client_requests_total), got $tried"
  ok "503: the trial, one attempt at inventory, found it still down; now Retry-After $retry_after"
done
((retry_after > first_wait)) ||
  fail "expected Retry-After to grow from $first_wait s after two failed trials, got $retry_after s"
ok "Retry-After grew from $first_wait s to $retry_after s: the open interval doubles with each failed trial (at most INVENTORY_BREAKER_RECOVERY)"

# ---- 8. inventory comes back ----------------------------------------------------
step "Inventory starts again: the next trial closes the circuit"
start_inventory
VIEW=$V_HEALTH call GET "$ORDERS/health"
expect_field .checks.inventory.circuit open \
  "still open: only a call can be the trial, and none was made since the last one"
# Nothing to poll: an open circuit lets the first call after its interval
# through as the trial, and Retry-After said when that is.
wait_retry_after
deadline=$((SECONDS + TIMEOUT))
while :; do
  VIEW=$V_ORDER call POST "$ORDERS/api/v1/orders" \
    '{"customer_id":"'"$CUSTOMER"'","items":[{"product_id":"'"$MUG"'","quantity":1}]}'
  [[ $STATUS == 503 && $SECONDS -lt $deadline ]] || break
  say "not yet; again after Retry-After $(header Retry-After) s"
  sleep "$(header Retry-After)"
done
expect 201 "201 Created: the trial call went through"
ORDER5=$(field .id)
VIEW=$V_HEALTH call GET "$ORDERS/health"
expect_field .checks.inventory.circuit closed "circuit to inventory closed"
show_metric 'circuit_breaker_state{target="inventory"}'
[[ $(metric 'circuit_breaker_state{target="inventory"}') == 0 ]] ||
  fail "expected circuit_breaker_state 0 (closed)"
ok "circuit_breaker_state 0 (closed)"
until_field "$ORDERS/api/v1/orders/$ORDER5" .status confirmed \
  "the new inventory confirms it through events"

printf '\n%s%sThe story held: %d checks passed.%s\n' "$B" "$GRN" "$CHECKS" "$OFF"
