#!/usr/bin/env bash
# The template's test, run by scripts/test.sh while its PostgreSQL and
# RabbitMQ are up (it inherits their settings: PG_PORT, RABBITMQ_URL,
# JWT_SECRET, the <SERVICE>_DATABASE_URLs, ...):
#
# 1. scripts/new-service itself, in a copy of the tree whose
#    docker-compose.yml and deploy/ are samples: bad names and ports are
#    refused with one line and exit 2, nothing is overwritten, a refusal
#    edits nothing, and the deployment entries are made - products'
#    entries copied, the name added to MICROSHOP_DATABASES and to the
#    lists of every service (depends_on, the alerts' job=~), the compose
#    file still passing `docker-compose config -q`. Services other than
#    products, inventory and orders are left out of this copy, so a fork
#    that made its own runs the same checks.
# 2. What a user does, in a scratch copy of the tree: `make new-service
#    NAME=payments` (payments2, ... in a fork that has a payments already),
#    build, scripts/check-deploy.sh on the copy (what make test checks
#    of the deployment files, with the Dockerfile rehearsed for payments),
#    then payments' own tests against real servers
#    - its database (payments_db, made by the copy's scripts/infra.sh in the
#    running cluster), the binary on TEST_HTTP_BASE+4, its unit suite, its
#    integration suite (HTTP, an event published through the outbox and
#    consumed), and the contract and event catalogue suites, which now
#    cover payments too.
#
# Afterwards payments is stopped, its database, role and queues dropped;
# the copies are removed when everything passed, and kept under
# STATE_DIR/new-service for a look when something failed (the next run
# removes them).
#
# Usage: scripts/check-new-service.sh STATE_DIR HTTP_BASE
# Environment: BUILD (build), SAN (1 = sanitizer build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

(($# == 2)) || {
  echo "usage: $0 STATE_DIR HTTP_BASE" >&2
  exit 2
}
STATE=$(realpath -m "$1")
HTTP_BASE=$2
BUILD=${BUILD:-build}
# the copy's build folder: BUILD, unless that is absolute (another tree's)
SBUILD=$BUILD
[[ $SBUILD != /* ]] || SBUILD=build
# the service part 2 makes: payments, unless the tree has one already
NAME=payments
for ((i = 2; i < 100; i++)); do
  [[ -e services/$NAME || -e migrations/$NAME || -e docs/api/$NAME.yaml ]] || break
  NAME=payments$i
done
WORK=$STATE/new-service
TREE=$WORK/tree
LOG=$STATE/logs/new-service-$NAME.log
: "${PG_PORT:?}" "${RABBITMQ_URL:?}" "${JWT_SECRET:?}" "${PG_SOCKET_DIR:?}" "${PG_BIN:?}"

fail() {
  echo "FAIL: new-service: $*" >&2
  exit 1
}

# copy_tree DEST: this tree as a clone has it plus uncommitted changes
# (tracked and untracked files git does not ignore), so no build/, no state
# folders; a plain copy without those where there is no git checkout.
copy_tree() {
  local dest=$1 skip
  skip=$(realpath -m --relative-to=. "$STATE")
  mkdir -p "$dest"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do
        [[ -e $f && $f != "$skip"/* ]] && printf '%s\0' "$f"
      done | tar --null -T - -cf - | tar -C "$dest" -xf -
  else
    tar --exclude=./build --exclude=./.git --exclude=./.run --exclude=./.test \
      --exclude=./.bench --exclude="./$skip" -cf - . | tar -C "$dest" -xf -
  fi
}

rm -rf -- "$WORK"
mkdir -p "$WORK" "$STATE/logs"

# ---- 1. the script -------------------------------------------------------
echo "== new-service: the script (sample compose file and deploy/)"
T=$WORK/script
copy_tree "$T"
for d in "$T"/services/*/; do # only the original three
  s=$(basename "$d")
  case $s in products | inventory | orders) continue ;; esac
  rm -rf "$d" "$T/migrations/$s" "$T/docs/api/$s.yaml" "$T/tests/unit/test_$s.c" \
    "$T/tests/integration/test_${s}_api.c"
done
# deploy/ of samples only, whatever entries a fork has made
rm -rf "$T/deploy"
mkdir -p "$T/deploy/systemd" "$T/deploy/kubernetes" "$T/deploy/prometheus/rules"
cat >"$T/docker-compose.yml" <<'EOF'
# A sample written by scripts/check-new-service.sh.
x-service: &service
  build:
    context: .
  restart: unless-stopped

services:
  postgres:
    image: postgres:15
    environment:
      - POSTGRES_USER=postgres
      - "MICROSHOP_DATABASES=products inventory orders" # orders last
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres && true"]
      interval: 5s

  products:
    <<: *service
    environment:
      SERVICE_NAME: products
      SERVICE_PORT: "8081"
      DATABASE_URL: postgres://products:products@postgres:5432/products_db
    ports:
      - "8081:8081"
    depends_on:
      postgres:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://localhost:8081/health/ready"]

  inventory:
    <<: *service

  # orders calls products
  orders:
    <<: *service
    environment:
      PRODUCTS_URL: http://products:8081
    depends_on:
      products:
        condition: service_healthy

  prometheus:
    image: prom/prometheus
    depends_on:
      - products
      - inventory
      - orders # scrapes them all

  jaeger:
    image: jaegertracing/all-in-one
    depends_on:
      - products

volumes:
  pgdata:
EOF
cp "$T/docker-compose.yml" "$WORK/compose.orig"
cat >"$T/deploy/systemd/microshop-products.service" <<'EOF'
[Unit]
Description=microshop products
[Service]
Environment=SERVICE_PORT=8081
Environment=MIGRATIONS_DIR=/opt/microshop/migrations/products
ExecStart=/opt/microshop/bin/products
DynamicUser=yes
EOF
cat >"$T/deploy/kubernetes/products.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: products
spec:
  template:
    spec:
      containers:
        - name: products
          ports:
            - containerPort: 8081
EOF
cat >"$T/deploy/prometheus/prometheus.yml" <<'EOF'
# A sample written by scripts/check-new-service.sh.
global:
  scrape_interval: 15s
rule_files:
  - rules/alerts.yml
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:9090"]
  - job_name: products
    static_configs:
      - targets: ["127.0.0.1:8081"]
  # the other two
  - job_name: inventory
    static_configs:
      - targets: ["127.0.0.1:8082"]
  - job_name: orders
    static_configs:
      - targets: ["127.0.0.1:8083"]
EOF
cat >"$T/deploy/prometheus/prometheus.compose.yml" <<'EOF'
scrape_configs:
  - job_name: products
    static_configs:
      - targets: ["products:8081"]

  - job_name: inventory
    static_configs:
      - targets: ["inventory:8082"]

  - job_name: orders
    static_configs:
      - targets: ["orders:8083"]

  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
EOF
cat >"$T/deploy/prometheus/rules/alerts.yml" <<'EOF'
groups:
  - name: sample
    rules:
      - alert: Down
        expr: up{job=~"products|inventory|orders"} == 0
      - alert: SomeDown
        expr: up{job=~"products|orders"} == 0 or up{job=~"orders|products|inventory"} == 0
EOF

# refused ARGS... : exit 2 and exactly one line on stderr, nothing made
refused() {
  local rc=0 err
  err=$( (cd "$T" && scripts/new-service "$@") 2>&1 >/dev/null) || rc=$?
  ((rc == 2)) || fail "new-service $* exited $rc, not 2 ($err)"
  [[ -n $err && $(wc -l <<<"$err") == 1 ]] || fail "new-service $*: not one line: $err"
  echo "   refused $*: $err"
}
refused -- Payments
refused -- 2pay
refused -- pay-ments
refused -- pay_ments
refused -- ''
refused -- abcdefghijklmnopqrstuvwxyzabcde # 31 characters
refused -- products
refused -- order # SQL
refused -- int   # C
refused -- outbox
refused -- test
refused --port 8081 -- payments
refused --port 80 -- payments
refused --port 8090 -- payments
refused --port x -- payments
refused one two
[[ ! -e $T/services/payments && ! -e $T/services/Payments ]] || fail "a refused name made a service"
out=$( (cd "$T" && make -s new-service 2>&1) || true)
grep -q '^usage: make new-service NAME=<name>' <<<"$out" || fail "make new-service without NAME: $out"

(cd "$T" && make -s new-service NAME=payments) >"$WORK/script.out" 2>&1 ||
  fail "make new-service NAME=payments: $(cat "$WORK/script.out")"
for f in services/payments/main.c services/payments/payments.c services/payments/payments.h \
  migrations/payments/0001_payments.sql tests/unit/test_payments.c \
  tests/integration/test_payments_api.c docs/api/payments.yaml \
  deploy/systemd/microshop-payments.service deploy/kubernetes/payments.yaml; do
  [[ -s $T/$f ]] || fail "make new-service made no $f"
done
grep -q '\.default_port = 8084,' "$T/services/payments/main.c" || fail "port 8084 not chosen"
grep -qx 'ExecStart=/opt/microshop/bin/payments' "$T/deploy/systemd/microshop-payments.service" &&
  grep -qx 'Environment=SERVICE_PORT=8084' "$T/deploy/systemd/microshop-payments.service" ||
  fail "the systemd unit is not products' with payments and 8084"
grep -q 'containerPort: 8084' "$T/deploy/kubernetes/payments.yaml" &&
  ! grep -q products "$T/deploy/kubernetes/payments.yaml" ||
  fail "the Kubernetes manifest is not products' with payments and 8084"
# compose: products untouched, payments after the last service, its
# database listed, prometheus (which waits for every service) waits for it
diff <(sed -n '/^  products:/,/^  # orders/p' "$WORK/compose.orig") \
  <(sed -n '/^  products:/,/^  # orders/p' "$T/docker-compose.yml") >/dev/null ||
  fail "the products block of docker-compose.yml changed"
awk '/^  payments:/ { p = 1 } p && /^  prometheus:/ { exit } p' "$T/docker-compose.yml" >"$WORK/block"
grep -q 'DATABASE_URL: postgres://payments:payments@postgres:5432/payments_db' "$WORK/block" &&
  grep -q '"8084:8084"' "$WORK/block" && grep -q 'localhost:8084/health/ready' "$WORK/block" ||
  fail "the payments block of docker-compose.yml is not products' renamed: $(cat "$WORK/block")"
lineno_of() { grep -n "$1" "$T/docker-compose.yml" | head -n 1 | cut -d: -f1; }
at=$(lineno_of '^  payments:')
((at > $(lineno_of '^  orders:') && at < $(lineno_of '^  prometheus:'))) ||
  fail "payments is not between orders, the last service, and prometheus"
grep -qx '      - "MICROSHOP_DATABASES=products inventory orders payments" # orders last' \
  "$T/docker-compose.yml" || fail "payments is not in MICROSHOP_DATABASES: $(grep MICROSHOP "$T/docker-compose.yml")"
sed -n '/^  prometheus:/,/^  jaeger:/p' "$T/docker-compose.yml" | grep -qx '      - payments' ||
  fail "prometheus does not wait for payments"
sed -n '/^  jaeger:/,$p' "$T/docker-compose.yml" | grep -q payments &&
  fail "jaeger, which waits for products only, waits for payments"
if command -v docker-compose >/dev/null; then
  services=$(cd "$T" && docker-compose config --services 2>&1) || fail "docker-compose config: $services"
  grep -qx payments <<<"$services" || fail "docker-compose sees no payments: $services"
fi
# Prometheus: a job in both configurations, after the services' jobs; the
# alerts' lists of every service's job, and only those, name payments
jobs() { sed -n 's/^  - job_name: //p' "$T/deploy/prometheus/$1" | tr '\n' ' '; }
[[ $(jobs prometheus.yml) == "prometheus products inventory orders payments " ]] ||
  fail "prometheus.yml: jobs are $(jobs prometheus.yml)"
[[ $(jobs prometheus.compose.yml) == "products inventory orders payments prometheus " ]] ||
  fail "prometheus.compose.yml: jobs are $(jobs prometheus.compose.yml)"
grep -A2 '^  - job_name: payments$' "$T/deploy/prometheus/prometheus.compose.yml" |
  grep -q '"payments:8084"' || fail "prometheus.compose.yml does not scrape payments:8084"
grep -A2 '^  - job_name: payments$' "$T/deploy/prometheus/prometheus.yml" |
  grep -q '"127.0.0.1:8084"' || fail "prometheus.yml does not scrape 127.0.0.1:8084"
grep -qF 'up{job=~"products|inventory|orders|payments"} == 0' "$T/deploy/prometheus/rules/alerts.yml" &&
  grep -qF 'up{job=~"products|orders"} == 0 or up{job=~"orders|products|inventory|payments"} == 0' \
    "$T/deploy/prometheus/rules/alerts.yml" ||
  fail "alerts.yml: payments is not in exactly the lists of every service's job: $(cat "$T/deploy/prometheus/rules/alerts.yml")"
if command -v promtool >/dev/null; then
  promtool check config "$T/deploy/prometheus/prometheus.yml" >/dev/null ||
    fail "promtool refuses prometheus.yml (or its rules) with payments"
  promtool check config "$T/deploy/prometheus/prometheus.compose.yml" >/dev/null ||
    fail "promtool refuses prometheus.compose.yml with payments"
fi
grep -qx '## payments.created' "$T/docs/events.md" && grep -qx '## payments.processed' "$T/docs/events.md" ||
  fail "docs/events.md does not document payments' events"

# once made, nothing is overwritten; a clash anywhere writes nothing
refused -- payments
rm -rf "$T/services/payments"
edited="docs/events.md docker-compose.yml deploy/prometheus/prometheus.yml
deploy/prometheus/prometheus.compose.yml deploy/prometheus/rules/alerts.yml"
for f in $edited; do cp "$T/$f" "$WORK/before.${f//\//_}"; done
refused -- payments # docs/api/payments.yaml and the rest are still there
[[ ! -e $T/services/payments ]] || fail "a refused run wrote services/payments"
for f in $edited; do
  cmp -s "$WORK/before.${f//\//_}" "$T/$f" || fail "a refused run edited $f"
done
# another service (payments' port is free again): its own compose entry
(cd "$T" && scripts/new-service refunds) >"$WORK/script2.out" 2>&1 ||
  fail "new-service refunds: $(cat "$WORK/script2.out")"
grep -q '\.default_port = 8084,' "$T/services/refunds/main.c" || fail "refunds did not get 8084"
grep -q '^  refunds:' "$T/docker-compose.yml" || fail "no refunds in docker-compose.yml"
grep -q 'MICROSHOP_DATABASES=products inventory orders refunds payments"' "$T/docker-compose.yml" ||
  fail "refunds is not in MICROSHOP_DATABASES after orders: $(grep MICROSHOP "$T/docker-compose.yml")"
# without products' entries: notices, and the service all the same
rm -f "$T/docker-compose.yml" "$T/deploy/systemd/"*.service "$T/deploy/kubernetes/"*.yaml
(cd "$T" && scripts/new-service audit) >"$WORK/script3.out" 2>&1 ||
  fail "new-service without compose: $(cat "$WORK/script3.out")"
grep -q 'notice: no docker-compose.yml' "$WORK/script3.out" || fail "no notice for the missing compose file"
[[ -f $T/services/audit/main.c && ! -e $T/docker-compose.yml ]] || fail "without compose: wrong result"
grep -q '\.default_port = 8085,' "$T/services/audit/main.c" || fail "audit did not get the next port, 8085"

# ---- 2. the scratch copy: make new-service, build, test ------------------
echo "== new-service: make new-service NAME=$NAME in a scratch copy, build, test"
copy_tree "$TREE"
# Objects of this build, so only what the new service changes compiles
# again (sources keep their times in the copy). Not with an absolute BUILD.
if [[ $SBUILD == "$BUILD" && -d $BUILD/obj ]]; then
  mkdir -p "$TREE/$BUILD"
  cp -a "$BUILD/obj" "$TREE/$BUILD/obj"
  [[ ! -f $BUILD/libsvc.a ]] || cp -a "$BUILD/libsvc.a" "$TREE/$BUILD/"
fi

pid=
cleanup() {
  local rc=$? stop=0
  trap - EXIT
  if [[ -n $pid ]]; then
    stop_pid "$pid" 30 || stop=$?
    ((stop == 0)) || echo "FAIL: new-service: $NAME exited with status $stop on SIGTERM (see $LOG)" >&2
    ((rc != 0 || stop == 0)) || rc=1
  fi
  amqp-delete-queue --url="$RABBITMQ_URL" -q "$NAME.processing" >/dev/null 2>&1 || true
  amqp-delete-queue --url="$RABBITMQ_URL" -q "$NAME.processing.dead" >/dev/null 2>&1 || true
  PGOPTIONS='-c client_min_messages=warning' \
    runuser -u postgres -- "$PG_BIN/psql" -q -X -h "$PG_SOCKET_DIR" -p "$PG_PORT" -d postgres \
    -c "DROP DATABASE IF EXISTS ${NAME}_db WITH (FORCE)" -c "DROP ROLE IF EXISTS $NAME" \
    >/dev/null 2>&1 || true
  if ((rc == 0)); then
    rm -rf -- "$WORK"
  else
    echo "new-service: the copies are in $WORK" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT

cd "$TREE"
make -s new-service NAME=$NAME
echo "   build"
make -s -j"$(nproc)" BUILD="$SBUILD" SAN="${SAN:-}" all
clang-format --dry-run --Werror services/$NAME/*.[ch] tests/unit/*.[ch] tests/integration/*.[ch] ||
  fail "the generated code is not clang-formatted"
# The deployment checks of make test, on the copy with NAME: compose,
# manifests and both Prometheus configurations agree on every service,
# the Dockerfile's build stage rehearsed for NAME, make install of every
# service and their systemd units; promtool on prometheus.yml and the rule
# files it loads (alerts.yml lists NAME's job now).
echo "   deployment files"
promtool check config deploy/prometheus/prometheus.yml >/dev/null ||
  fail "promtool refuses prometheus.yml with $NAME"
BUILD=$SBUILD SAN=${SAN:-} REHEARSE_SERVICE=$NAME scripts/check-deploy.sh "$WORK/deploy" 2>&1 |
  sed 's/^/   /' || fail "scripts/check-deploy.sh fails after make new-service NAME=$NAME"

echo "   unit tests"
CK_RUN_SUITE=$NAME "$SBUILD/tests/unit"

# The copy's infra.sh finds services/payments: on the running servers it
# only adds payments' role and database. Then a clean database.
scripts/infra.sh start "$STATE" >/dev/null
set -a
. "$STATE/env"
set +a
pg_recreate_db "${NAME}_db" "$NAME"
url_var=${NAME^^}_DATABASE_URL
[[ -n ${!url_var:-} ]] || fail "scripts/infra.sh env has no $url_var"

port=$(svc_port "$NAME" "$HTTP_BASE")
SERVICE_HOST=127.0.0.1 SERVICE_PORT=$port DATABASE_URL=${!url_var} \
  LOG_LEVEL=${LOG_LEVEL:-info} "$SBUILD/$NAME" >"$LOG" 2>&1 &
pid=$!
if ! wait_ready "http://127.0.0.1:$port/health/ready" 60 "$pid"; then
  tail -n 20 "$LOG" >&2
  fail "$NAME did not become ready"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
[[ $code == 200 ]] || fail "GET /health answered $code"

echo "   integration tests"
export "${NAME^^}_URL=http://127.0.0.1:$port" BIN_DIR=$SBUILD
for suite in ${NAME}_api contract catalogue; do
  CK_RUN_SUITE=$suite "$SBUILD/tests/integration"
done
echo "== new-service: $NAME passed"
