#!/usr/bin/env bash
# make chaos: breaks a running `make run` on purpose while build/loadgen
# keeps a steady rate of customers on it, then lets it settle and checks
# that nothing the suite promised was broken (docs/chaos.md).
#
# The schedule, one fault after the other with calm between them:
#   rabbitmq-stop      the broker stopped, then started again
#   postgres-restart   PostgreSQL restarted in immediate mode (a crash)
#   inventory-sigstop  inventory frozen (SIGSTOP), then resumed
#   products-sigkill   products killed (SIGKILL); make run starts it again
#   relay-pause        orders' outbox relay paused (/admin/faults)
#   latency-errors     products' reads slowed, inventory's reservations
#                      failing 30 % of the time (/admin/faults)
#   duplicates         every event inventory and orders consume handled
#                      twice (/admin/faults)
# Then the load stops, the suite gets a bounded time to settle, and the
# invariants are checked and printed as a table:
#   - no acknowledged order lost (every 201 is an order orders has)
#   - every order final: confirmed, rejected or cancelled, none pending
#   - stock: each product's on_hand is what it was less exactly what its
#     confirmed orders took (no oversell, nothing taken twice), and
#     nothing is left reserved
#   - every event in every outbox published
#   - every effect applied once: the reservations inventory confirmed are
#     exactly the orders confirmed, and duplicates were seen and skipped
#   - the backlog drained within the settle bound
# and, per fault, how long orders answered 503 and how many orders it
# refused, and how soon after the fault it placed an order again. Exits 1
# on any violation, 2 when it cannot start.
#
# Needs root (it stops and starts make run's PostgreSQL and RabbitMQ, as
# scripts/infra.sh does) and a make run session with FAULTS=on (the
# default). Environment: RUN_STATE_DIR (.run), RUN_HTTP_BASE (8080),
# BUILD (build), CHAOS_RATE (10 requests/s), CHAOS_SHORT (1: each fault
# held a few seconds, about a minute in all - make test's run),
# CHAOS_SETTLE (180 s: the bound on settling; above orders'
# RESERVATION_GRACE, 1 min by default, after which a reservation whose
# answer was lost is given back).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

run_session
RATE=${CHAOS_RATE:-10}
SETTLE=${CHAOS_SETTLE:-180}
STOCK=100000
if [[ ${CHAOS_SHORT:-} == 1 ]]; then
  HOLD=3 CALM=3 WARMUP=3
else
  HOLD=10 CALM=8 WARMUP=5
fi

die() { # cannot start
  echo "make chaos: $*" >&2
  exit 2
}
note() { printf '%s  %s\n' "$(date +%T)" "$*"; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# ---- is the suite there? -------------------------------------------------------
[[ $(id -u) -eq 0 ]] || die "needs root: it stops and starts make run's PostgreSQL and RabbitMQ"
for tool in curl jq awk; do
  command -v "$tool" >/dev/null || die "$tool is missing; run scripts/deps.sh"
done
[[ -x $BUILD/loadgen ]] || die "$BUILD/loadgen is missing: make"
[[ -n $(pid_of "$PID_DIR/run.pid") ]] ||
  die "no make run session in $STATE: start one with \`make run\` (same RUN_STATE_DIR, RUN_HTTP_BASE)"
for s in products inventory orders; do
  u=${s^^}
  curl -fsS -o /dev/null --max-time 3 "${!u}/health/ready" 2>/dev/null ||
    die "$s does not answer at ${!u}/health/ready"
done
set -a
# shellcheck source=/dev/null # written by scripts/infra.sh
. "$STATE/env"
set +a
TOKEN=$(run_admin_token chaos 3600) || exit 2
AUTH="Authorization: Bearer $TOKEN"
for s in products inventory orders; do
  u=${s^^}
  code=$(curl -sS -o /dev/null -w '%{http_code}' -H "$AUTH" "${!u}/admin/faults") || code=000
  [[ $code == 200 ]] ||
    die "$s answers $code on /admin/faults: start make run with FAULTS=on (its default)"
done

TMP=$(mktemp -d)
LOADGEN=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $LOADGEN ]] && kill -0 "$LOADGEN" 2>/dev/null; then
    kill -INT "$LOADGEN" 2>/dev/null || true
    wait "$LOADGEN" 2>/dev/null || true
  fi
  # whatever a fault left behind: nothing stays frozen, held or broken
  [[ -z ${FROZEN:-} ]] || kill -CONT "$FROZEN" 2>/dev/null || true
  rm -f "$PID_DIR"/*.hold
  scripts/infra.sh start "$STATE" rabbitmq >/dev/null 2>&1 || true
  for s in products inventory orders; do
    u=${s^^}
    curl -sS -o /dev/null -X DELETE -H "$AUTH" "${!u}/admin/faults" 2>/dev/null || true
  done
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- faults --------------------------------------------------------------------------
fault() { # fault URL NAME JSON: PUT /admin/faults/NAME
  local code
  code=$(curl -sS -o "$TMP/fault" -w '%{http_code}' -X PUT -H "$AUTH" \
    -H 'Content-Type: application/json' -d "$3" "$1/admin/faults/$2") || code=000
  [[ $code == 200 || $code == 201 ]] || {
    echo "make chaos: PUT $1/admin/faults/$2 answered $code: $(head -c 300 "$TMP/fault")" >&2
    exit 1
  }
}
declare -a FAULT_NAMES=() FAULT_START=()
begin() {
  FAULT_NAMES+=("$1")
  FAULT_START+=("$(now_ms)")
  note "fault: $1 - $2"
}
end() {
  note "healed: ${FAULT_NAMES[-1]}"
  sleep "$CALM"
}

f_rabbitmq_stop() {
  begin rabbitmq-stop "the broker stopped for $HOLD s"
  scripts/infra.sh stop "$STATE" rabbitmq >/dev/null
  sleep "$HOLD"
  scripts/infra.sh start "$STATE" rabbitmq >/dev/null
  end
}
f_postgres_restart() {
  begin postgres-restart "PostgreSQL restarted in immediate mode"
  (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" restart -D "$STATE/pg/data" \
    -m immediate -w -s -l "$STATE/pg/postgres.log" >/dev/null)
  end
}
f_inventory_sigstop() {
  FROZEN=$(pid_of "$PID_DIR/inventory.pid")
  [[ -n $FROZEN ]] || die "no inventory pid in $PID_DIR"
  begin inventory-sigstop "inventory frozen for $HOLD s"
  kill -STOP "$FROZEN"
  sleep "$HOLD"
  kill -CONT "$FROZEN"
  FROZEN=
  end
}
f_products_sigkill() {
  local pid new
  pid=$(pid_of "$PID_DIR/products.pid")
  [[ -n $pid ]] || die "no products pid in $PID_DIR"
  begin products-sigkill "products killed, started again by make run"
  : >"$PID_DIR/products.hold" # make run keeps it down while this exists
  kill -KILL "$pid"
  # make run has seen it go, and the hold, once it dropped the pid file
  for _ in $(seq 1 300); do
    [[ -e $PID_DIR/products.pid ]] || break
    sleep 0.1
  done
  [[ ! -e $PID_DIR/products.pid ]] || {
    echo "make chaos: make run did not notice products' end" >&2
    exit 1
  }
  rm -f "$PID_DIR/products.hold"
  for _ in $(seq 1 300); do
    new=$(pid_of "$PID_DIR/products.pid")
    [[ -z $new || $new == "$pid" ]] || break
    sleep 0.1
  done
  wait_ready "$PRODUCTS/health/ready" 30 "$new" || {
    echo "make chaos: products (pid ${new:-none}) not ready within 30 s" >&2
    exit 1
  }
  end
}
f_relay_pause() {
  begin relay-pause "orders' outbox relay paused for $HOLD s"
  fault "$ORDERS" chaos-relay "{\"kind\":\"relay_pause\",\"ttl\":$HOLD}"
  sleep "$HOLD"
  end
}
f_latency_errors() {
  begin latency-errors "products' reads slowed, 30 % of inventory's reservations failing, for $HOLD s"
  fault "$PRODUCTS" chaos-slow \
    "{\"kind\":\"http_latency\",\"target\":\"/api/v1/products/{id}\",\"min_ms\":100,\"max_ms\":400,\"ttl\":$HOLD}"
  fault "$INVENTORY" chaos-errors \
    "{\"kind\":\"http_error\",\"target\":\"/api/v1/reservations\",\"rate\":0.3,\"status\":503,\"ttl\":$HOLD}"
  sleep "$HOLD"
  end
}
f_duplicates() {
  begin duplicates "every event inventory and orders consume handled twice, for $HOLD s"
  fault "$INVENTORY" chaos-dup "{\"kind\":\"duplicate_delivery\",\"rate\":1,\"ttl\":$HOLD}"
  fault "$ORDERS" chaos-dup "{\"kind\":\"duplicate_delivery\",\"rate\":1,\"ttl\":$HOLD}"
  sleep "$HOLD"
  end
}

# ---- load ------------------------------------------------------------------------------
metric_sum() { # metric_sum URL NAME{LABELS-PREFIX}: the sum of matching samples
  curl -sS --max-time 5 "$1/metrics" 2>/dev/null |
    awk -v m="$2" 'index($0, m) == 1 { s += $NF } END { printf "%d\n", s }'
}
duplicates() { # events inventory and orders found in their inboxes already
  echo $(($(metric_sum "$INVENTORY" 'events_consumed_total{event_type="order.created",outcome="duplicate"}') +
    $(metric_sum "$ORDERS" 'events_consumed_total{event_type="inventory.confirmed",outcome="duplicate"}')))
}
dups_before=$(duplicates)

note "load: build/loadgen at $RATE/s, 4 products of its own with $STOCK each"
LOADGEN_TOKEN=$TOKEN "$BUILD/loadgen" --products "$PRODUCTS" --inventory "$INVENTORY" \
  --orders "$ORDERS" --rate "$RATE" --duration 0 --seed 4 --stock "$STOCK" \
  --record "$TMP/record" --json --quiet >"$TMP/summary.json" 2>"$TMP/loadgen.err" &
LOADGEN=$!
for _ in $(seq 1 600); do
  grep -q '^order ' "$TMP/record" 2>/dev/null && break
  kill -0 "$LOADGEN" 2>/dev/null || die "loadgen stopped: $(tail -n 1 "$TMP/loadgen.err")"
  sleep 0.1
done
grep -q '^order ' "$TMP/record" || die "loadgen placed no order in 60 s"
sleep "$WARMUP"

# ---- the schedule ----------------------------------------------------------------
t_faults=$(now_ms)
f_rabbitmq_stop
f_postgres_restart
f_inventory_sigstop
f_products_sigkill
f_relay_pause
f_latency_errors
f_duplicates
t_calm=$(now_ms)
kill -INT "$LOADGEN"
wait "$LOADGEN" || true
LOADGEN=
note "load stopped after $(((t_calm - t_faults) / 1000)) s of faults; settling (at most $SETTLE s)"

# ---- settle ------------------------------------------------------------------------------
mapfile -t CUSTOMERS < <(awk '$1 == "customer" { print $2 }' "$TMP/record")
mapfile -t CHAOS_PRODUCTS < <(awk '$1 == "product" { print $2 }' "$TMP/record")
list_orders() { # every order of loadgen's customers: "id status product:qty..."
  local c after page
  : >"$TMP/orders"
  for c in "${CUSTOMERS[@]}"; do
    after=
    while :; do
      page=$(curl -fsS --max-time 10 \
        "$ORDERS/api/v1/orders?customer_id=$c&limit=100${after:+&after=$after}") || return 1
      jq -r '.items[] | "\(.id) \(.status) \([.items[] | "\(.product_id):\(.quantity)"] | join(" "))"' \
        <<<"$page" >>"$TMP/orders"
      after=$(jq -r '.next // empty' <<<"$page")
      [[ -n $after ]] || break
    done
  done
}
outbox_pending() {
  local s u n total=0
  for s in products inventory orders; do
    u=${s^^}
    n=$(metric_sum "${!u}" 'outbox_pending')
    total=$((total + n))
  done
  echo "$total"
}
reserved_total() {
  local p n total=0
  for p in "${CHAOS_PRODUCTS[@]}"; do
    n=$(curl -fsS --max-time 5 "$INVENTORY/api/v1/inventory/$p" | jq -r .reserved) || return 1
    total=$((total + n))
  done
  echo "$total"
}
settled() {
  list_orders || return 1
  ! grep -q ' pending' "$TMP/orders" || return 1
  [[ $(outbox_pending) == 0 ]] || return 1
  [[ $(reserved_total) == 0 ]]
}
deadline=$((SECONDS + SETTLE))
until settled; do
  ((SECONDS < deadline)) || break
  sleep 1
done
t_settled=$(now_ms)
settle_s=$(((t_settled - t_calm) / 1000))

# ---- the invariants ----------------------------------------------------------------------
FAILED=0
ROWS=()
row() { # row WHAT EXPECTED GOT: ok when they are equal
  local mark=ok
  [[ $2 == "$3" ]] || {
    mark=VIOLATED
    FAILED=1
  }
  ROWS+=("$(printf '%-52s %12s %12s  %s' "$1" "$2" "$3" "$mark")")
}
list_orders || die "cannot list the orders of loadgen's customers"
awk '$1 == "order" && ($3 == 200 || $3 == 201) && $4 != "-" { print $4 }' "$TMP/record" |
  sort -u >"$TMP/acked"
cut -d' ' -f1 "$TMP/orders" | sort -u >"$TMP/listed"
acked=$(wc -l <"$TMP/acked")
row "acknowledged orders lost (of $acked)" 0 "$(comm -23 "$TMP/acked" "$TMP/listed" | wc -l)"
row "orders not final (pending) of $(wc -l <"$TMP/orders")" 0 "$(grep -c ' pending' "$TMP/orders" || true)"

# stock: confirmed orders take their quantities; cancelled ones gave them back
declare -A TAKEN=()
while read -r _ status items; do
  [[ $status == confirmed ]] || continue
  for it in $items; do
    TAKEN[${it%%:*}]=$((${TAKEN[${it%%:*}]:-0} + ${it#*:}))
  done
done <"$TMP/orders"
wrong=0 held=0
for p in "${CHAOS_PRODUCTS[@]}"; do
  read -r on_hand reserved < <(curl -fsS "$INVENTORY/api/v1/inventory/$p" | jq -r '"\(.on_hand) \(.reserved)"')
  ((on_hand == STOCK - ${TAKEN[$p]:-0})) || wrong=$((wrong + 1))
  held=$((held + reserved))
done
row "products whose on_hand != stock - confirmed" 0 "$wrong"
row "units left reserved" 0 "$held"
row "events left in the outboxes" 0 "$(outbox_pending)"

# effects once: inventory confirmed exactly the reservations of the
# confirmed orders (read from inventory's own database)
confirmed_ids=$(awk '$2 == "confirmed" { printf "%s%s", sep, $1; sep = "," }' "$TMP/orders")
inv_confirmed=$(PGOPTIONS='-c client_min_messages=warning' runuser -u postgres -- \
  "$PG_BIN/psql" -X -A -t -h "$PG_SOCKET_DIR" -p "$PG_PORT" -d inventory_db \
  -c "SELECT count(*) FROM reservations WHERE status = 'confirmed' AND order_id = ANY ('{${confirmed_ids}}'::uuid[])")
row "confirmed orders without a confirmed reservation" 0 \
  "$(($(grep -c ' confirmed ' "$TMP/orders" || true) - inv_confirmed))"
dups=$(($(duplicates) - dups_before))
row "duplicate deliveries seen and skipped (> 0)" yes "$( ((dups > 0)) && echo yes || echo "no ($dups)")"
row "settled within $SETTLE s" yes "$( ((settle_s < SETTLE)) && echo yes || echo no)"

# ---- report ---------------------------------------------------------------------------
summary=$(cat "$TMP/summary.json")
echo
echo "make chaos: $(jq -r '"\(.run.started) requests at \(.run.rate)/s over \(.run.elapsed_s | floor) s; \(.orders.placed) orders placed, \(.orders.not_placed) refused"' <<<"$summary"); settled in $settle_s s"
echo
printf '%-18s %9s %9s %16s\n' fault "503 for" refused "orders back in"
for i in "${!FAULT_NAMES[@]}"; do
  from=${FAULT_START[$i]}
  next=${FAULT_START[$((i + 1))]:-$t_calm}
  # "back in": from the fault's start to the first order placed after
  # the last one refused in its window ("-": none was refused)
  awk -v from="$from" -v next_="$next" -v name="${FAULT_NAMES[$i]}" '
    $1 == "order" && $2 >= from && $2 < next_ {
      if ($3 == 503) { sec[int($2 / 1000)] = 1 }
      if ($3 != 200 && $3 != 201) { refused++; last = $2; back = 0 }
      else if (refused && !back) back = $2
    }
    END {
      for (s in sec) secs++
      printf "%-18s %7d s %9d %16s\n", name, secs, refused,
        !refused ? "-" : back ? sprintf("%.1f s", (back - from) / 1000) : "not in window"
    }' "$TMP/record"
done
echo
printf '%-52s %12s %12s\n' invariant expected got
printf '%s\n' "${ROWS[@]}"
echo
if ((FAILED)); then
  echo "make chaos: an invariant was violated" >&2
  exit 1
fi
echo "make chaos: every invariant held"
