#!/usr/bin/env bash
# make bench: measures the services against a baseline taken in the same
# run on the same PostgreSQL, so the ratio means something on a shared,
# noisy machine where absolute numbers do not.
#
#   products read: wrk, GET /api/v1/products/{id}, random ids out of 10,000
#   seeded products, keep-alive, BENCH_CONNECTIONS (64) connections for
#   BENCH_SECONDS (10) s; baseline: pgbench -S -M prepared (16 clients).
#   Run three times: access log off (LOG_LEVEL=warn); the same with a span
#   per request exported as OTLP/HTTP JSON to build/tests/otlpsink (a
#   collector stand-in that only counts), for the cost of tracing; and
#   with the access log on (info, to a file).
#   Printed: the throughputs, their ratios, p50/p99, the service's peak RSS.
#
#   orders write: wrk, POST /api/v1/orders (one item, of one of 100 products
#   with stock large enough),
#   BENCH_ORDER_CONNECTIONS (16) connections; each order reads prices from
#   products, reserves at inventory and writes the order with its event.
#   Run twice: the request path alone (no broker, so no relays and no
#   consumers), then the whole saga (relays publishing, inventory
#   confirming, orders confirming, products projecting stock: several
#   more commits per order, on the same PostgreSQL).
#   Baseline: pgbench's default TPC-B-like script, 16 clients.
#
#   relay throughput: BENCH_RELAY_EVENTS (50,000) product.updated rows,
#   shaped as products writes them, put into products' outbox with one
#   INSERT ... SELECT, then products starts (OUTBOX_BATCH=BENCH_OUTBOX_BATCH,
#   default the service's 200) and the clock runs until every row has
#   sent_at (polled every 50 ms). A quorum queue of the bench's own
#   (bench.relay, bound to product.updated, which no service consumes) must
#   then hold them all; it is deleted afterwards. Printed: events/s from
#   the process start and between the first and the last confirmed batch.
#   Baseline: the same number of messages of the same size, published with
#   confirms in batches of the same size by libsvc's publisher alone
#   (build/tests/mqbench, no database) into the same kind of queue.
#
#   event latency: with all three services running, BENCH_LATENCY_EVENTS
#   (500) products created through the API one at a time, 20 ms apart;
#   per event, inventory's inbox.processed_at (its stock row committed)
#   minus products' outbox.created_at (the producing transaction), both on
#   the one PostgreSQL clock. Printed: p50/p99 of that, and of
#   outbox.sent_at - created_at (the relay marks a row after the confirm, so
#   the consumer may well be done first), against the relay's fallback poll
#   interval (1 s): a p50 far below it shows the NOTIFY wake-up at work.
#
# State lives in .bench/ (its own ports), stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

STATE=$(realpath -m "${BENCH_STATE_DIR:-.bench}")
export PG_PORT=${BENCH_PG_PORT:-27432}
export AMQP_PORT=${BENCH_AMQP_PORT:-27682}
HTTP_BASE=${BENCH_HTTP_BASE:-28080}
SECONDS_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-64}
PG_BIN=/usr/lib/postgresql/15/bin

scripts/deps.sh
make -s -j"$(nproc)" all

declare -A PIDS=()
RELAY_QUEUE=bench.relay
MQBENCH=build/tests/mqbench
relay_queue_made=
finish() {
  local s
  trap - EXIT INT TERM
  for s in "${!PIDS[@]}"; do stop_pid "${PIDS[$s]}" 30 || true; done
  if [[ -n $relay_queue_made ]]; then "$MQBENCH" delete "$RELAY_QUEUE" || true; fi
  scripts/infra.sh stop "$STATE" >/dev/null || true
}
trap finish EXIT
trap 'exit 130' INT TERM

mkdir -p "$STATE/logs"
scripts/infra.sh start "$STATE" >/dev/null
set -a
. "$STATE/env"
set +a
for s in products inventory orders; do pg_recreate_db "${s}_db" "$s"; done
pg_recreate_db bench_db bench
export JWT_SECRET
JWT_SECRET=$(state_secret "$STATE")
# wrk sends everything from 127.0.0.1: the limiter stays on, so its cost
# is in the figures, with a limit the load never reaches.
export RATE_LIMIT=100000/second

# rss_peak PID -> peak resident set in MiB
rss_peak() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# wrk_field OUTPUT NAME: "Requests/sec", or a latency percentile "50%"/"99%"
wrk_rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
wrk_pct() { awk -v p="$2" '$1 == p {print $2}' <<<"$1"; }

# wrk_measure IDS LUA URL CONNS PID: 2 s of warm-up (connections, caches),
# then the measured run; sets m_rps m_p50 m_p99 m_errors, and m_rss (the
# peak RSS of PID)
wrk_measure() {
  local out
  IDS_FILE=$1 wrk -t2 -c"$4" -d2s -s "$2" "$3" >/dev/null
  out=$(IDS_FILE=$1 wrk -t2 -c"$4" -d"${SECONDS_RUN}s" --latency -s "$2" "$3")
  m_rps=$(wrk_rps "$out")
  m_p50=$(wrk_pct "$out" 50%)
  m_p99=$(wrk_pct "$out" 99%)
  m_errors=$(grep -E '^non-2xx' <<<"$out")
  m_rss=$(rss_peak "$5")
}

echo "== baseline: pgbench -S -M prepared (16 clients, ${SECONDS_RUN}s)"
"$PG_BIN/pgbench" -q -i -s 10 "$BENCH_DATABASE_URL" >/dev/null 2>&1
pg_out=$("$PG_BIN/pgbench" -S -M prepared -c 16 -j 2 -T "$SECONDS_RUN" \
  "$BENCH_DATABASE_URL" 2>/dev/null)
pg_tps=$(awk '/^tps/ {print int($3)}' <<<"$pg_out")
echo "   pgbench: $pg_tps TPS"

port=$(svc_port products "$HTTP_BASE")
# wrk_products LOG_LEVEL TAG [VAR=value...]: starts products (with the extra
# settings), measures, sets rps p50 p99 rss errors
wrk_products() {
  local level=$1 tag=$2
  shift 2
  env SERVICE_HOST=127.0.0.1 SERVICE_PORT="$port" \
    DATABASE_URL="$PRODUCTS_DATABASE_URL" LOG_LEVEL="$level" "$@" \
    build/products >"$STATE/logs/products-$tag.log" 2>&1 &
  PIDS[products]=$!
  wait_ready "http://127.0.0.1:$port/health/ready" 60 "${PIDS[products]}"
  wrk_measure "$STATE/ids" scripts/bench/random_product.lua \
    "http://127.0.0.1:$port" "$CONNS" "${PIDS[products]}"
  rps=$m_rps p50=$m_p50 p99=$m_p99 rss=$m_rss errors=$m_errors
  stop_pid "${PIDS[products]}" 30 || true
  unset 'PIDS[products]'
}

# The schema comes from the service's own migrations.
SERVICE_HOST=127.0.0.1 SERVICE_PORT=$port DATABASE_URL=$PRODUCTS_DATABASE_URL \
  build/products migrate >/dev/null
"$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 "$PRODUCTS_DATABASE_URL" <<'SQL' >/dev/null
INSERT INTO products (sku, name, description, price_cents, currency)
SELECT 'BENCH-' || g, 'Product ' || g, 'Seeded for the benchmark', g * 10, 'EUR'
FROM generate_series(1, 10000) g;
ANALYZE products;
SQL
"$PG_BIN/psql" -X -At "$PRODUCTS_DATABASE_URL" -c "SELECT id FROM products" >"$STATE/ids"

echo "== products: GET /api/v1/products/{id} ($CONNS connections, ${SECONDS_RUN}s), access log off"
wrk_products warn plain
echo "   products: $rps req/s, p50 $p50, p99 $p99, peak RSS ${rss} MiB ($errors)"
q_rps=$rps q_p50=$p50 q_p99=$p99
echo "== the same with tracing on (a span per request, exported as OTLP/HTTP JSON)"
otlp_port=$((HTTP_BASE + 9))
build/tests/otlpsink "$otlp_port" >"$STATE/otlpsink.out" &
PIDS[otlpsink]=$!
wrk_products warn traced \
  OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp_port" \
  OTEL_BSP_SCHEDULE_DELAY=1s
stop_pid "${PIDS[otlpsink]}" 10 || true
unset 'PIDS[otlpsink]'
read -r t_exports t_spans <"$STATE/otlpsink.out" || true
t_rps=$rps t_p50=$p50 t_p99=$p99
echo "   products: $rps req/s, p50 $p50, p99 $p99, peak RSS ${rss} MiB ($errors); collector got ${t_spans:-?} spans in ${t_exports:-?} requests"
echo "== the same with the access log on (LOG_LEVEL=info, to a file)"
wrk_products info logged
echo "   products: $rps req/s, p50 $p50, p99 $p99, peak RSS ${rss} MiB ($errors)"

# --- events: relay throughput -------------------------------------------
RELAY_N=${BENCH_RELAY_EVENTS:-50000}
RELAY_BATCH=${BENCH_OUTBOX_BATCH:-200}
# psql_products SQL: one value, unaligned
psql_products() { "$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 "$PRODUCTS_DATABASE_URL" -c "$1"; }
# queue_holds N SECONDS: waits until the bench queue holds N messages
queue_holds() {
  local deadline=$((SECONDS + $2)) got
  while ((SECONDS < deadline)); do
    got=$("$MQBENCH" count "$RELAY_QUEUE")
    [[ $got == "$1" ]] && return 0
    sleep 0.2
  done
  echo "   the queue holds $got messages, not $1" >&2
  return 1
}
# The queue is the bench's own: product.updated has no consumer, so the
# relay's messages go nowhere else.
"$MQBENCH" delete "$RELAY_QUEUE"
"$MQBENCH" declare "$RELAY_QUEUE" product.updated
relay_queue_made=1

# The rows: as products' product_update statement writes them (its JSON
# rendering, a request id, a traceparent), 5 events for each seeded product.
psql_products "
INSERT INTO outbox (event_type, aggregate_id, data, request_id, traceparent)
SELECT 'product.updated', p.id,
  (SELECT row_to_json(j) FROM (SELECT p.id, p.sku, p.name, p.description,
    p.price_cents, p.currency, p.available, p.version,
    rfc3339(p.created_at) AS created_at,
    rfc3339(p.updated_at) AS updated_at) j)::jsonb,
  gen_random_uuid()::text,
  '00-' || md5(g || '/' || p.id) || '-' || left(md5(p.id || '/' || g), 16) || '-01'
FROM generate_series(1, $RELAY_N) g
JOIN (SELECT *, row_number() OVER (ORDER BY created_at, id) AS rn FROM products) p
  ON p.rn = (g - 1) % (SELECT count(*) FROM products) + 1;" >/dev/null
psql_products "VACUUM ANALYZE outbox" >/dev/null
# The relay's message: the envelope around data (relay_batch in outbox.c).
body_bytes=$(psql_products "SELECT round(avg(length(data::text)))::int
  + length('{\"id\":\"\",\"event_type\":\"product.updated\",\"source\":\"products\",\"timestamp\":\"\",\"data\":}')
  + 36 + 27 FROM outbox WHERE sent_at IS NULL")

echo "== baseline: $RELAY_N messages (${body_bytes} B) published with confirms, batches of $RELAY_BATCH, no database"
b_out=$("$MQBENCH" publish product.updated "$RELAY_N" "$RELAY_BATCH" "$body_bytes")
b_s=${b_out#* }
queue_holds "$RELAY_N" 60
b_eps=$(awk -v n="$RELAY_N" -v s="$b_s" 'BEGIN {printf "%d", n / s}')
echo "   publisher: $b_eps msg/s (${b_s} s)"
"$MQBENCH" delete "$RELAY_QUEUE"
"$MQBENCH" declare "$RELAY_QUEUE" product.updated

echo "== relay: $RELAY_N outbox rows, OUTBOX_BATCH=$RELAY_BATCH, publisher confirms"
port=$(svc_port products "$HTTP_BASE")
t0=$EPOCHREALTIME
SERVICE_HOST=127.0.0.1 SERVICE_PORT=$port DATABASE_URL=$PRODUCTS_DATABASE_URL \
  LOG_LEVEL=warn OUTBOX_BATCH=$RELAY_BATCH build/products >"$STATE/logs/products-relay.log" 2>&1 &
PIDS[products]=$!
relay_deadline=$((SECONDS + 600))
while :; do
  left=$(psql_products "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
  [[ $left == 0 ]] && break
  if ((SECONDS >= relay_deadline)) || ! kill -0 "${PIDS[products]}" 2>/dev/null; then
    echo "   $left rows still unsent; see $STATE/logs/products-relay.log" >&2
    exit 1
  fi
  sleep 0.05
done
t1=$EPOCHREALTIME
stop_pid "${PIDS[products]}" 30 || true
unset 'PIDS[products]'
queue_holds "$RELAY_N" 60
"$MQBENCH" delete "$RELAY_QUEUE"
relay_queue_made=
r_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
r_eps=$(awk -v n="$RELAY_N" -v s="$r_s" 'BEGIN {printf "%d", n / s}')
# Between the first and the last batch marked sent: start-up left out.
r_steady=$(psql_products "SELECT round(($RELAY_N - $RELAY_BATCH) /
  extract(epoch FROM max(sent_at) - min(sent_at)))::int FROM outbox
  WHERE event_type = 'product.updated'")
r_ratio=$(awk -v a="$r_eps" -v b="$b_eps" 'BEGIN {printf "%.2f", a / b}')
echo "   relay: $r_eps events/s (${r_s} s from the process start; $r_steady/s between the first and last batch); all $RELAY_N in the queue"

echo "== baseline: pgbench TPC-B-like (16 clients, ${SECONDS_RUN}s)"
tpcb_out=$("$PG_BIN/pgbench" -c 16 -j 2 -T "$SECONDS_RUN" "$BENCH_DATABASE_URL" 2>/dev/null)
tpcb_tps=$(awk '/^tps/ {print int($3)}' <<<"$tpcb_out")
echo "   pgbench: $tpcb_tps TPS"

ORDER_CONNS=${BENCH_ORDER_CONNECTIONS:-16}
# 100 products with plenty of stock: orders spread over them, so the
# benchmark measures the order path, not one hot stock row.
"$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 "$PRODUCTS_DATABASE_URL" -c \
  "SELECT id FROM products ORDER BY created_at, id LIMIT 100" >"$STATE/order_ids"
DATABASE_URL=$INVENTORY_DATABASE_URL build/inventory migrate >/dev/null
"$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 "$INVENTORY_DATABASE_URL" -c \
  "INSERT INTO stock (product_id, on_hand)
   SELECT unnest('{$(paste -sd, "$STATE/order_ids")}'::uuid[]), 1000000000
   ON CONFLICT (product_id) DO UPDATE SET on_hand = EXCLUDED.on_hand" >/dev/null
orders_url=http://127.0.0.1:$(svc_port orders "$HTTP_BASE")

# wrk_orders TAG [env args]: starts the three services (with the env
# arguments), warms up, measures; sets o_rps o_p50 o_p99 o_rss o_errors.
# The services keep running (the latency benchmark below uses them).
wrk_orders() {
  local tag=$1 s p url_var
  shift
  for s in products inventory orders; do
    p=$(svc_port "$s" "$HTTP_BASE")
    url_var=${s^^}_DATABASE_URL
    env "$@" SERVICE_HOST=127.0.0.1 SERVICE_PORT="$p" DATABASE_URL="${!url_var}" \
      LOG_LEVEL=warn PRODUCTS_URL="http://127.0.0.1:$(svc_port products "$HTTP_BASE")" \
      INVENTORY_URL="http://127.0.0.1:$(svc_port inventory "$HTTP_BASE")" \
      "build/$s" >"$STATE/logs/$s-orders-$tag.log" 2>&1 &
    PIDS[$s]=$!
    wait_ready "http://127.0.0.1:$p/health/ready" 60 "${PIDS[$s]}"
  done
  wrk_measure "$STATE/order_ids" scripts/bench/place_order.lua "$orders_url" \
    "$ORDER_CONNS" "${PIDS[orders]}"
  o_rps=$m_rps o_p50=$m_p50 o_p99=$m_p99 o_rss=$m_rss o_errors=$m_errors
}
stop_services() {
  local s
  for s in orders inventory products; do
    stop_pid "${PIDS[$s]}" 30 || true
    unset "PIDS[$s]"
  done
}

echo "== orders: POST /api/v1/orders ($ORDER_CONNS connections, ${SECONDS_RUN}s), the request path alone (no broker: no relays, no consumers)"
wrk_orders sync -u RABBITMQ_URL
stop_services
echo "   orders: $o_rps orders/s, p50 $o_p50, p99 $o_p99, peak RSS ${o_rss} MiB ($o_errors)"
sync_rps=$o_rps sync_p50=$o_p50 sync_p99=$o_p99
echo "== the same with the whole saga running (relays and consumers: confirmations, stock projections)"
wrk_orders saga
echo "   orders: $o_rps orders/s, p50 $o_p50, p99 $o_p99, peak RSS ${o_rss} MiB ($o_errors)"
o_ratio=$(awk -v a="$o_rps" -v b="$tpcb_tps" 'BEGIN {printf "%.2f", a / b}')
sync_ratio=$(awk -v a="$sync_rps" -v b="$tpcb_tps" 'BEGIN {printf "%.2f", a / b}')

# --- events: end-to-end latency -----------------------------------------
# Products created one at a time through the API while all three services
# run: product.created goes products' outbox -> relay (woken by NOTIFY) ->
# broker -> inventory's consumer, which commits a stock row and its inbox
# row. Both databases live on the one server, so the clocks agree.
LAT_N=${BENCH_LATENCY_EVENTS:-500}
echo "== events: $LAT_N x POST /api/v1/products, 20 ms apart, until inventory's stock row"
products_url=http://127.0.0.1:$(svc_port products "$HTTP_BASE")
token=$(SERVICE_PORT=$(svc_port products "$HTTP_BASE") build/products token)
for ((i = 1; i <= LAT_N; i++)); do
  curl -fsS -o /dev/null -X POST "$products_url/api/v1/products" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"sku\":\"LAT-$i\",\"name\":\"Latency $i\",\"price_cents\":100,\"currency\":\"EUR\"}"
  sleep 0.02
done
lat_deadline=$((SECONDS + 60))
until [[ $("$PG_BIN/psql" -X -At "$INVENTORY_DATABASE_URL" -c \
  "SELECT count(*) FROM inbox WHERE event_type = 'product.created'") -ge $LAT_N ]]; do
  if ((SECONDS >= lat_deadline)); then
    echo "   inventory did not consume all $LAT_N product.created events" >&2
    exit 1
  fi
  sleep 0.1
done
# event id | created_at | sent_at (epoch seconds), and event id | processed_at
psql_products "SELECT id, extract(epoch FROM created_at), extract(epoch FROM sent_at)
  FROM outbox WHERE event_type = 'product.created' ORDER BY id" \
  | LC_ALL=C sort -t'|' -k1,1 >"$STATE/lat_products"
"$PG_BIN/psql" -X -At "$INVENTORY_DATABASE_URL" -c \
  "SELECT event_id, extract(epoch FROM processed_at) FROM inbox
   WHERE event_type = 'product.created'" | LC_ALL=C sort -t'|' -k1,1 >"$STATE/lat_inventory"
LC_ALL=C join -t'|' "$STATE/lat_products" "$STATE/lat_inventory" \
  | awk -F'|' '{printf "%.3f %.3f\n", ($4 - $2) * 1000, ($3 - $2) * 1000}' >"$STATE/lat_ms"
# pct FILE COLUMN P: the P-th percentile, interpolated like percentile_cont
pct() {
  sort -n -k"$2","$2" "$1" | awk -v c="$2" -v p="$3" '
    { v[NR] = $c }
    END { r = 1 + (NR - 1) * p; i = int(r); f = r - i
          printf "%.1f", v[i] + (i < NR ? (v[i + 1] - v[i]) * f : 0) }'
}
lat_n=$(wc -l <"$STATE/lat_ms")
e_p50=$(pct "$STATE/lat_ms" 1 0.5) e_p99=$(pct "$STATE/lat_ms" 1 0.99)
s_p50=$(pct "$STATE/lat_ms" 2 0.5) s_p99=$(pct "$STATE/lat_ms" 2 0.99)
echo "   commit -> consumer committed: p50 $e_p50 ms, p99 $e_p99 ms ($lat_n events; relay poll fallback 1 s)"
echo "   commit -> marked sent by the relay (after the confirm): p50 $s_p50 ms, p99 $s_p99 ms"

ratio=$(awk -v a="$q_rps" -v b="$pg_tps" 'BEGIN {printf "%.2f", a / b}')
t_ratio=$(awk -v a="$t_rps" -v b="$q_rps" 'BEGIN {printf "%.2f", a / b}')
ratio_log=$(awk -v a="$rps" -v b="$pg_tps" 'BEGIN {printf "%.2f", a / b}')
cat <<MSG

== summary
   pgbench -S -M prepared          $pg_tps TPS
   products GET by id              $q_rps req/s   p50 $q_p50   p99 $q_p99
     with tracing exported         $t_rps req/s   p50 $t_p50   p99 $t_p99   (traced / plain: $t_ratio; target >= 0.90)
     with the access log on        $rps req/s   p50 $p50   p99 $p99
   ratio products / pgbench        $ratio  (access log on: $ratio_log; target >= 0.5, p99 < 5 ms)
   products peak RSS               ${rss} MiB
   pgbench TPC-B-like              $tpcb_tps TPS
   orders POST, request path only  $sync_rps orders/s   p50 $sync_p50   p99 $sync_p99
   ratio request path / TPC-B      $sync_ratio
   orders POST, whole saga         $o_rps orders/s   p50 $o_p50   p99 $o_p99
   ratio saga / TPC-B              $o_ratio
   orders peak RSS                 ${o_rss} MiB
   publisher, confirms             $b_eps msg/s   (batches of $RELAY_BATCH, no database)
   outbox relay                    $r_eps events/s   ($r_steady/s after start-up; OUTBOX_BATCH=$RELAY_BATCH)
   ratio relay / publisher         $r_ratio
   event commit -> consumed        p50 $e_p50 ms   p99 $e_p99 ms   (marked sent: p50 $s_p50 ms, p99 $s_p99 ms)
MSG
