#!/usr/bin/env bash
# make load: build/loadgen (docs/load.md) against the suite `make run` is
# running, found the way scripts/demo.sh finds it: RUN_HTTP_BASE (8080:
# products 8081, inventory 8082, orders 8083), RUN_STATE_DIR (.run) for the
# JWT secret, BUILD (build) for the binaries. Mints an admin token the way
# demo.sh does and hands it to loadgen in LOADGEN_TOKEN (never on a command
# line), for seeding: SEED=N creates N products with stock; unset, 10 are
# created when the catalogue has none of loadgen's in stock yet, so a first
# run on a fresh make run has something to order and later runs reuse them.
#
# Usage: scripts/load.sh [loadgen flags]   (make load passes --rate and
# --duration from RATE and DURATION; LOAD_FLAGS adds more, word-split).
# Defaults: --rate 50 --duration 60s; the flags given win.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

run_session

die() {
  echo "make load: $*" >&2
  exit 1
}

for tool in curl jq; do
  command -v "$tool" >/dev/null || die "$tool is missing; run scripts/deps.sh (as root)"
done
for s in PRODUCTS INVENTORY ORDERS; do
  url=${!s}/health/ready
  curl -fsS -o /dev/null --max-time 3 "$url" 2>/dev/null ||
    die "the suite is not running: no answer from ${s,,} at $url - start it with \`make run\` in another terminal (same RUN_HTTP_BASE, RUN_STATE_DIR)"
done

err=$(mktemp)
trap 'rm -f "$err"' EXIT
LOADGEN_TOKEN=$(run_admin_token loadgen 900 2>"$err") || die "$(head -n 1 "$err")"
export LOADGEN_TOKEN

# Products loadgen made earlier (SKU LOADGEN-...) that are still in stock.
if [[ -z ${SEED:-} ]]; then
  SEED=10
  mine=$(curl -fsS --max-time 5 "$PRODUCTS/api/v1/products?limit=100" |
    jq '[.items[] | select(.available and (.sku | startswith("LOADGEN-")))] | length') ||
    die "cannot list the products at $PRODUCTS"
  ((mine == 0)) || SEED=0
fi

rm -f "$err"
trap - EXIT
read -r -a extra <<<"${LOAD_FLAGS:-}"
exec "$BUILD/loadgen" --rate 50 --duration 60s --seed "$SEED" \
  --products "$PRODUCTS" --inventory "$INVENTORY" --orders "$ORDERS" \
  "$@" "${extra[@]}"
