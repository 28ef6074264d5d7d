#!/usr/bin/env bash
# make bench: measures the services against a baseline taken in the same
# run on the same PostgreSQL, so the ratio means something on a shared,
# noisy machine where absolute numbers do not.
#
#   products read: wrk, GET /api/v1/products/{id}, random ids out of 10,000
#   seeded products, keep-alive, BENCH_CONNECTIONS (64) connections for
#   BENCH_SECONDS (10) s; baseline: pgbench -S -M prepared (16 clients).
#   Run twice: access log off (LOG_LEVEL=warn) and on (info, to a file).
#   Printed: both throughputs, their ratio, p50/p99, the service's peak RSS.
#
#   orders write: wrk, POST /api/v1/orders (one item, of one of 100 products
#   with stock large enough),
#   BENCH_ORDER_CONNECTIONS (16) connections; each order reads prices from
#   products, reserves at inventory and writes the order with its event.
#   Baseline: pgbench's default TPC-B-like script, 16 clients.
#
# State lives in .bench/ (its own ports), stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

STATE=$(realpath -m "${BENCH_STATE_DIR:-.bench}")
export PG_PORT=${BENCH_PG_PORT:-57432}
export AMQP_PORT=${BENCH_AMQP_PORT:-57672}
HTTP_BASE=${BENCH_HTTP_BASE:-28080}
SECONDS_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-64}
PG_BIN=/usr/lib/postgresql/15/bin

scripts/deps.sh
make -s -j"$(nproc)" all

declare -A PIDS=()
finish() {
  local s
  trap - EXIT INT TERM
  for s in "${!PIDS[@]}"; do stop_pid "${PIDS[$s]}" 30 || true; done
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

# rss_peak PID -> peak resident set in MiB
rss_peak() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# wrk_field OUTPUT NAME: "Requests/sec", or a latency percentile "50%"/"99%"
wrk_rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
wrk_pct() { awk -v p="$2" '$1 == p {print $2}' <<<"$1"; }

echo "== baseline: pgbench -S -M prepared (16 clients, ${SECONDS_RUN}s)"
"$PG_BIN/pgbench" -q -i -s 10 "$BENCH_DATABASE_URL" >/dev/null 2>&1
pg_out=$("$PG_BIN/pgbench" -S -M prepared -c 16 -j 2 -T "$SECONDS_RUN" \
  "$BENCH_DATABASE_URL" 2>/dev/null)
pg_tps=$(awk '/^tps/ {print int($3)}' <<<"$pg_out")
echo "   pgbench: $pg_tps TPS"

port=$(svc_port products "$HTTP_BASE")
# wrk_products LOG_LEVEL: starts products, measures, sets rps p50 p99 rss errors
wrk_products() {
  SERVICE_HOST=127.0.0.1 SERVICE_PORT=$port DATABASE_URL=$PRODUCTS_DATABASE_URL \
    LOG_LEVEL=$1 build/products >"$STATE/logs/products-$1.log" 2>&1 &
  PIDS[products]=$!
  wait_ready "http://127.0.0.1:$port/health/ready" 60 "${PIDS[products]}"
  # Warm up the connections and caches, then measure.
  IDS_FILE=$STATE/ids wrk -t2 -c"$CONNS" -d2s -s scripts/bench/random_product.lua \
    "http://127.0.0.1:$port" >/dev/null
  local out
  out=$(IDS_FILE=$STATE/ids wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency \
    -s scripts/bench/random_product.lua "http://127.0.0.1:$port")
  rps=$(wrk_rps "$out")
  p50=$(wrk_pct "$out" 50%)
  p99=$(wrk_pct "$out" 99%)
  rss=$(rss_peak "${PIDS[products]}")
  errors=$(grep -E '^non-2xx' <<<"$out")
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
wrk_products warn
echo "   products: $rps req/s, p50 $p50, p99 $p99, peak RSS ${rss} MiB ($errors)"
q_rps=$rps q_p50=$p50 q_p99=$p99
echo "== the same with the access log on (LOG_LEVEL=info, to a file)"
wrk_products info
echo "   products: $rps req/s, p50 $p50, p99 $p99, peak RSS ${rss} MiB ($errors)"

echo "== baseline: pgbench TPC-B-like (16 clients, ${SECONDS_RUN}s)"
tpcb_out=$("$PG_BIN/pgbench" -c 16 -j 2 -T "$SECONDS_RUN" "$BENCH_DATABASE_URL" 2>/dev/null)
tpcb_tps=$(awk '/^tps/ {print int($3)}' <<<"$tpcb_out")
echo "   pgbench: $tpcb_tps TPS"

echo "== orders: POST /api/v1/orders (${ORDER_CONNS:=${BENCH_ORDER_CONNECTIONS:-16}} connections, ${SECONDS_RUN}s)"
for s in products inventory orders; do
  p=$(svc_port "$s" "$HTTP_BASE")
  url_var=${s^^}_DATABASE_URL
  SERVICE_HOST=127.0.0.1 SERVICE_PORT=$p DATABASE_URL=${!url_var} LOG_LEVEL=warn \
    PRODUCTS_URL=http://127.0.0.1:$(svc_port products "$HTTP_BASE") \
    INVENTORY_URL=http://127.0.0.1:$(svc_port inventory "$HTTP_BASE") \
    build/$s >"$STATE/logs/$s-orders.log" 2>&1 &
  PIDS[$s]=$!
  wait_ready "http://127.0.0.1:$p/health/ready" 60 "${PIDS[$s]}"
done
# 100 products with plenty of stock: orders spread over them, so the
# benchmark measures the order path, not one hot stock row.
"$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 "$PRODUCTS_DATABASE_URL" -c \
  "SELECT id FROM products ORDER BY created_at, id LIMIT 100" >"$STATE/order_ids"
"$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 "$INVENTORY_DATABASE_URL" -c \
  "INSERT INTO stock (product_id, on_hand)
   SELECT unnest('{$(paste -sd, "$STATE/order_ids")}'::uuid[]), 1000000000" >/dev/null
orders_url=http://127.0.0.1:$(svc_port orders "$HTTP_BASE")
IDS_FILE=$STATE/order_ids wrk -t2 -c"$ORDER_CONNS" -d2s -s scripts/bench/place_order.lua \
  "$orders_url" >/dev/null
out=$(IDS_FILE=$STATE/order_ids wrk -t2 -c"$ORDER_CONNS" -d"${SECONDS_RUN}s" --latency \
  -s scripts/bench/place_order.lua "$orders_url")
o_rps=$(wrk_rps "$out")
o_p50=$(wrk_pct "$out" 50%)
o_p99=$(wrk_pct "$out" 99%)
o_rss=$(rss_peak "${PIDS[orders]}")
o_errors=$(grep -E '^non-2xx' <<<"$out")
echo "   orders: $o_rps orders/s, p50 $o_p50, p99 $o_p99, peak RSS ${o_rss} MiB ($o_errors)"
o_ratio=$(awk -v a="$o_rps" -v b="$tpcb_tps" 'BEGIN {printf "%.2f", a / b}')

ratio=$(awk -v a="$q_rps" -v b="$pg_tps" 'BEGIN {printf "%.2f", a / b}')
ratio_log=$(awk -v a="$rps" -v b="$pg_tps" 'BEGIN {printf "%.2f", a / b}')
cat <<MSG

== summary
   pgbench -S -M prepared          $pg_tps TPS
   products GET by id              $q_rps req/s   p50 $q_p50   p99 $q_p99
     with the access log on        $rps req/s   p50 $p50   p99 $p99
   ratio products / pgbench        $ratio  (access log on: $ratio_log; target >= 0.5, p99 < 5 ms)
   products peak RSS               ${rss} MiB
   pgbench TPC-B-like              $tpcb_tps TPS
   orders POST                     $o_rps orders/s   p50 $o_p50   p99 $o_p99
   ratio orders / TPC-B            $o_ratio
   orders peak RSS                 ${o_rss} MiB
MSG
