#!/usr/bin/env bash
# Checks the deployment files without running them - the compose stack is
# run by scripts/compose-test.sh; there is no systemd as PID 1 and no
# Kubernetes cluster here - and installs the services into a scratch
# prefix for the tests to run from there:
#
#   compose     `docker-compose config -q` (Debian's docker-compose 1.29);
#               scripts/check-manifests.py on the resolved file, the
#               Kubernetes manifests and both Prometheus configurations
#               (every service present, ports, probes, databases and
#               timeouts in agreement); promtool on prometheus.compose.yml
#   Dockerfile  its build packages are those of scripts/deps.sh; its build
#               stage rehearsed without Docker (what it COPYs, in a scratch
#               folder, then its RUN lines for one service) and the staged
#               tree holds what the runtime stage copies; its runtime
#               packages provide every library that binary links against
#   install     `make install` of every service into SCRATCH_DIR/prefix
#   systemd     `systemd-analyze verify` of each installed unit (pointing at
#               that prefix) prints nothing; `systemd-analyze security
#               --offline` rates its exposure at most 2.0
#
# Usage: scripts/check-deploy.sh SCRATCH_DIR   (emptied first)
# Environment: BUILD, SAN (as for make; the installed binaries are those);
# REHEARSE_SERVICE, the service whose Docker build is rehearsed (products;
# scripts/check-new-service.sh rehearses the service it generates).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[[ $# -eq 1 && -n $1 ]] || {
  echo "usage: $0 SCRATCH_DIR" >&2
  exit 2
}
SCRATCH=$(realpath -m "$1")
BUILD=${BUILD:-build}
REHEARSE_SERVICE=${REHEARSE_SERVICE:-products}
status=0
fail() {
  echo "FAIL: $*" >&2
  status=1
}
rm -rf -- "$SCRATCH"
mkdir -p -- "$SCRATCH"
mapfile -t SERVICES < <(services)
[[ " ${SERVICES[*]} " == *" $REHEARSE_SERVICE "* ]] || {
  echo "check-deploy: REHEARSE_SERVICE=$REHEARSE_SERVICE is not a service (${SERVICES[*]})" >&2
  exit 2
}

# ---- compose, manifests, Prometheus ----------------------------------------
docker-compose config -q
docker-compose config >"$SCRATCH/compose.yml"
scripts/check-manifests.py "$SCRATCH/compose.yml" "${SERVICES[@]}" || status=1
promtool check config deploy/prometheus/prometheus.compose.yml >/dev/null ||
  fail "promtool check config deploy/prometheus/prometheus.compose.yml"

# ---- Dockerfile ---------------------------------------------------------------
# Dockerfile lines of one stage with continuations joined; $1: 1 = build
# stage, 2 = runtime stage.
stage() {
  sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' Dockerfile |
    awk -v want="$1" '/^FROM /{n++} n==want && !/^[[:space:]]*#/'
}
# The packages of a stage's `apt-get install` line, sorted.
apt_packages() {
  stage "$1" | grep 'apt-get install' |
    sed 's/.*--no-install-recommends//; s/&&.*//' | tr -s ' ' '\n' |
    sed '/^$/d' | sort
}
deps_packages() {
  sed -n '/^PACKAGES=(/,/^)/p' scripts/deps.sh | sed '1d;$d' | tr -s ' ' '\n' |
    sed '/^$/d'
}
want=$(deps_packages | grep -Ex 'build-essential|make|pkg-config|.*-dev' |
  grep -v '^libclang-rt' | sort)
got=$(apt_packages 1)
if [[ $want != "$got" ]]; then
  fail "Dockerfile build packages differ from scripts/deps.sh's:" \
    "$(diff <(echo "$want") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
fi

# The build stage without Docker: its COPYs into a scratch /src, its RUN
# lines (apt-get aside) there, with /out moved into the scratch folder.
src=$SCRATCH/docker/src out=$SCRATCH/docker/out
mkdir -p "$src"
while read -r verb args; do
  case $verb in
  COPY)
    read -r from to <<<"$args"
    mkdir -p "$src/$(dirname "$to")"
    cp -R "${from%/}" "$src/${to%/}"
    ;;
  RUN)
    [[ $args == *apt-get* ]] && continue
    # a clean environment, as in a Docker build: no BUILD, SAN, CC, CFLAGS
    (cd "$src" && env -i PATH="$PATH" HOME="$src" SERVICE="$REHEARSE_SERVICE" \
      bash -ec "${args//\/out/$out}") \
      >"$SCRATCH/docker/build.log" 2>&1 || {
      tail -n 20 "$SCRATCH/docker/build.log" >&2
      fail "Dockerfile build stage (rehearsed in $src) failed: RUN $args"
    }
    ;;
  esac
done < <(stage 1 | grep -E '^(COPY|RUN) ')
bin=$out/usr/local/bin/$REHEARSE_SERVICE
copied=$(stage 2 | sed -n 's|^COPY --from=build /out\(/[^ ]*\) .*|\1|p')
[[ $copied == /usr/local/ ]] ||
  fail "the runtime stage should copy /out/usr/local/ (it copies '$copied')"
if [[ ! -x $bin ]] ||
  ! ls "$out/usr/local/share/microshop/migrations/$REHEARSE_SERVICE"/*.sql >/dev/null 2>&1; then
  fail "the rehearsed build stage left no $bin and migrations in $out"
else
  runtime=$(apt_packages 2)
  while read -r soname; do
    lib=$(ldd "$bin" | awk -v n="$soname" '$1 == n { print $3 }')
    pkg=$(dpkg -S "$(realpath -- "${lib:-/nonexistent}")" 2>/dev/null ||
      dpkg -S "${lib:-/nonexistent}" 2>/dev/null || true)
    pkg=${pkg%%:*}
    [[ $pkg == libc6 ]] && continue
    grep -qx -- "$pkg" <<<"$runtime" ||
      fail "$REHEARSE_SERVICE needs $soname (Debian package '${pkg:-?}'), not among the Dockerfile's runtime packages"
  done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
fi

# ---- make install, systemd ----------------------------------------------------
prefix=$SCRATCH/prefix
make -s BUILD="$BUILD" SAN="${SAN:-}" install SERVICE="${SERVICES[*]}" \
  PREFIX="$prefix" UNITDIR="$prefix/lib/systemd/system" >/dev/null
for s in "${SERVICES[@]}"; do
  unit=$prefix/lib/systemd/system/microshop-$s.service
  if [[ ! -f $unit ]]; then
    fail "make install left no $unit"
    continue
  fi
  grep -qx "ExecStart=$prefix/bin/$s" "$unit" ||
    fail "$unit: ExecStart is not $prefix/bin/$s"
  # verify exits 0 on unknown keys and bad values; anything printed fails.
  msg=$(systemd-analyze verify "$unit" 2>&1) || true
  [[ -z $msg ]] || fail "systemd-analyze verify $unit: $msg"
  systemd-analyze security --offline=yes --threshold=20 "$unit" >/dev/null 2>&1 ||
    fail "$unit: exposure above 2.0 ($(systemd-analyze security --offline=yes "$unit" 2>&1 | tail -n 1))"
done

if ((status == 0)); then
  echo "check-deploy: compose, manifests, Dockerfile (build rehearsed for $REHEARSE_SERVICE), make install and ${#SERVICES[@]} systemd units OK"
fi
exit "$status"
