#!/usr/bin/env bash
# Runs docker-compose.yml on Docker or, where no Docker engine runs, on
# podman, which this script prepares (make compose-up, make compose-down).
#
# Usage: scripts/compose.sh up|down [--volumes]|env|ports
#   up    prepare the engine, build the images (cached ones are reused),
#         start the stack, wait until every container is healthy (at most
#         COMPOSE_WAIT seconds), print the URLs
#   down  stop and remove the stack's containers and networks (and its
#         volumes with --volumes), then stop what `up` started for it;
#         nothing else - other projects' containers, images and networks
#         are never touched
#   env   print shell settings that reach the running stack
#         (set -a; . <(scripts/compose.sh env); set +a; docker-compose ps)
#   ports print the port variables of docker-compose.yml, NAME=DEFAULT
#
# With podman (rootful, needs root), `up` first:
#   - installs what is missing (scripts/deps.sh containers);
#   - writes STATE/containers.conf: the runc runtime, cgroupfs, netavark,
#     and default ulimits no higher than this machine's hard limits;
#   - starts podman's Docker-compatible API on STATE/podman.sock, and a
#     helper that runs the project's due health checks (podman cannot
#     schedule them without systemd; `depends_on: service_healthy` would
#     wait forever) - both by PID file, stopped by `down`;
#   - when debian:12 or debian:12-slim is absent, makes a minimal Debian 12
#     with debootstrap from this machine's own apt sources and tags it so;
#   - tries one container, so a runtime that refuses says so in one line;
#   - uses docker-compose.otlpsink.yml in Jaeger's place when Jaeger's
#     public image cannot be pulled.
# A failed `up` stops whatever it started.
#
# Environment: COMPOSE_STATE_DIR (.compose), COMPOSE_PROJECT_NAME
# (microshop), COMPOSE_ENGINE (auto | docker | podman), COMPOSE_OTLPSINK
# (auto: when Jaeger cannot be pulled | 1 | 0), COMPOSE_WAIT (300), and the
# port variables of docker-compose.yml (PRODUCTS_PORT, ...). `up` saves
# what it used in STATE/env; `down` and `env` read it from there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib.sh

set_state() { # set_state DIR: where this stack's files are
  STATE=$(realpath -m "$1")
  ENV_FILE=$STATE/env
  PID_DIR=$STATE/pids
  API_PIDFILE=$PID_DIR/podman-api.pid
  HC_PIDFILE=$PID_DIR/healthchecks.pid
  SOCKET=$STATE/podman.sock
}
set_state "${COMPOSE_STATE_DIR:-.compose}"
JAEGER_IMAGE=docker.io/jaegertracing/all-in-one:1.57.0
BASE_IMAGES=(docker.io/library/debian:12 docker.io/library/debian:12-slim)
BASE_LOCAL=localhost/microshop-base:bookworm
# The published ports: NAME=DEFAULT for each "${NAME_PORT:-DEFAULT}" of
# docker-compose.yml, in its order - a service `make new-service` added
# brings its own.
# shellcheck disable=SC2016 # a literal ${...} is what is looked for
mapfile -t PORT_VARS < <(grep -o '\${[A-Z][A-Z0-9_]*_PORT:-[0-9]\{1,5\}}' "$ROOT/docker-compose.yml" |
  sed 's/^\${\(.*\):-\(.*\)}$/\1=\2/' | awk '!seen[$0]++')
# Those that are not a service's.
INFRA_PORTS=" POSTGRES_PORT RABBITMQ_PORT RABBITMQ_UI_PORT PROMETHEUS_PORT ALERTMANAGER_PORT JAEGER_UI_PORT "

die() {
  echo "compose: $*" >&2
  exit 1
}
note() { echo "compose: $*"; }
usage() {
  sed -n '5,15s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

# Phase times (lib.sh's phase), and the whole since the script started.
T0=${EPOCHREALTIME/./}
PHASE_T=$T0 PHASE_PREFIX='compose: '
elapsed() {
  local us=$((${EPOCHREALTIME/./} - T0))
  printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}

# pid_alive PIDFILE WORD: the process named there lives and an argument of
# its command line holds WORD (a recycled PID is not ours).
pid_alive() { pid_matches "$(read_pid "$1")" cmdline "$2"; }
stop_pidfile() { # stop_pidfile PIDFILE WORD: SIGTERM, then SIGKILL after 10 s
  local pid
  if pid_alive "$1" "$2"; then
    pid=$(read_pid "$1")
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f -- "$1"
}

# ---- the engine -------------------------------------------------------------
docker_engine() { # a Docker engine answers (not podman's API of ours)
  command -v docker >/dev/null && [[ -z ${DOCKER_HOST:-} || ${DOCKER_HOST:-} != "unix://$SOCKET" ]] &&
    timeout 10 docker info >/dev/null 2>&1
}
choose_engine() {
  case ${COMPOSE_ENGINE:-auto} in
  docker) ENGINE=docker ;;
  podman) ENGINE=podman ;;
  auto) if docker_engine; then ENGINE=docker; else ENGINE=podman; fi ;;
  *) die "COMPOSE_ENGINE=${COMPOSE_ENGINE} is not auto, docker or podman" ;;
  esac
}
compose() { "${COMPOSE[@]}" "$@"; }

podman_conf() {
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [[ $nofile == unlimited ]] && nofile=1048576
  [[ $nproc == unlimited ]] && nproc=32768
  ((nofile <= 1048576)) || nofile=1048576
  ((nproc <= 32768)) || nproc=32768 # podman caps it there
  cat >"$STATE/containers.conf" <<EOF
# Written by scripts/compose.sh: podman for docker-compose.yml on this
# machine. Default ulimits at or under the hard limits seen here (a
# process without CAP_SYS_RESOURCE can only lower them); runc and cgroupfs,
# since no systemd runs; netavark, whose aardvark-dns gives containers
# their peers' names.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
EOF
  export CONTAINERS_CONF=$STATE/containers.conf
}

api_up() {
  curl -fsS --max-time 2 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1
}
start_api() {
  local i
  if pid_alive "$API_PIDFILE" "$SOCKET" && api_up; then
    return 0
  fi
  stop_pidfile "$API_PIDFILE" "$SOCKET"
  rm -f -- "$SOCKET"
  # setsid: a Ctrl-C in the caller's terminal must not reach it.
  setsid podman system service --time=0 "unix://$SOCKET" \
    >"$STATE/podman-api.log" 2>&1 </dev/null &
  echo $! >"$API_PIDFILE"
  for ((i = 0; i < 100; i++)); do
    api_up && return 0
    kill -0 "$(read_pid "$API_PIDFILE")" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 5 "$STATE/podman-api.log" >&2
  die "podman's API service did not start on $SOCKET (log: $STATE/podman-api.log)"
}

start_healthchecks() {
  pid_alive "$HC_PIDFILE" healthchecks && return 0
  setsid "$ROOT/scripts/compose.sh" healthchecks "$STATE" "$PROJECT" \
    >"$STATE/healthchecks.log" 2>&1 </dev/null &
  echo $! >"$HC_PIDFILE"
}

# The health-check helper (internal: `compose.sh healthchecks STATE
# PROJECT`): every second, each running container of PROJECT with a
# health check that is due gets `podman healthcheck run`, the checks of
# one round side by side. Due means its interval has passed since its last
# run - or, while the container is still "starting", a second has, as
# Docker's start_interval does: dependents start as soon as it is healthy.
# One `podman ps` a round says which run and their health; a container's
# interval is read once. It ends by itself when the API service of STATE
# is gone.
run_healthchecks() {
  local project=$1 id status every now
  declare -A last=() interval=()
  trap 'exit 0' TERM INT
  while pid_alive "$API_PIDFILE" "$SOCKET"; do
    now=$SECONDS
    while IFS='|' read -r id status; do
      if [[ -z ${interval[$id]:-} ]]; then
        interval[$id]=$(duration_s "$(podman inspect --format \
          '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Interval}}{{end}}' \
          "$id" 2>/dev/null)")
      fi
      every=${interval[$id]}
      ((every > 0)) || continue
      [[ $status != *"(starting)"* ]] || every=1
      ((now - ${last[$id]:--1000000} >= every)) || continue
      last[$id]=$now
      podman healthcheck run "$id" >/dev/null 2>&1 &
    done < <(podman ps --no-trunc --filter status=running \
      --filter "label=com.docker.compose.project=$project" \
      --format '{{.ID}}|{{.Status}}' 2>/dev/null)
    wait
    sleep 1
  done
}
duration_s() { # a Go duration ("5s", "1m30s", "500ms") in whole seconds; 0 if none
  local d=${1:-} s=0 n u
  [[ $d =~ ^([0-9]+(ms|h|m|s))+$ ]] || {
    echo 0
    return
  }
  while [[ $d =~ ^([0-9]+)(ms|h|m|s)(.*)$ ]]; do
    n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
    case $u in h) s=$((s + n * 3600)) ;; m) s=$((s + n * 60)) ;; s) s=$((s + n)) ;; esac
  done
  echo $((s > 0 ? s : 1))
}

# A minimal Debian 12 for `FROM debian:12` and `FROM debian:12-slim`,
# where neither can be pulled: debootstrap from the Debian mirror this
# machine's apt uses, its apt sources copied in, trimmed like the slim
# images (no documentation, manuals or translations; no package cache).
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [[ -r $f ]] || continue
    sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
      -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}\([^[:space:]]*\)[[:space:]]\+bookworm[[:space:]].*/\2/p' "$f" |
      grep -v security | head -n 1
  done | head -n 1
}
make_base_image() {
  local missing=() img rootfs mirror
  for img in "${BASE_IMAGES[@]}"; do
    podman image exists "$img" || missing+=("$img")
  done
  ((${#missing[@]} > 0)) || return 0
  if ! podman image exists "$BASE_LOCAL"; then
    rootfs=$STATE/rootfs
    rm -rf -- "$rootfs"
    mirror=$(debian_mirror)
    note "making a Debian 12 base image with debootstrap${mirror:+ from $mirror} (about 30 s)"
    if ! debootstrap --variant=minbase bookworm "$rootfs" ${mirror:+"$mirror"} \
      >"$STATE/debootstrap.log" 2>&1; then
      tail -n 5 "$STATE/debootstrap.log" >&2
      rm -rf -- "$rootfs"
      die "debootstrap of Debian 12 failed (log: $STATE/debootstrap.log)"
    fi
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
      cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
      rm -f "$rootfs/etc/apt/sources.list"
    elif [[ -r /etc/apt/sources.list ]]; then
      grep -E '^deb[[:space:]].*debian' /etc/apt/sources.list >"$rootfs/etc/apt/sources.list" || true
    fi
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
// No package cache in an image layer (scripts/compose.sh).
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
# No documentation, manuals or translations in images (scripts/compose.sh).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    (cd "$rootfs" && rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin \
      var/lib/apt/lists/* usr/share/man/* usr/share/info/* usr/share/locale/* &&
      find usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete)
    tar -C "$rootfs" -c . | podman import -q --change 'CMD ["bash"]' - "$BASE_LOCAL" >/dev/null ||
      die "podman import of the Debian base image failed"
    rm -rf -- "$rootfs"
  fi
  for img in "${missing[@]}"; do
    podman tag "$BASE_LOCAL" "$img"
    note "tagged $img (Debian 12 made by debootstrap)"
  done
}

# One container, before building anything: a runtime or kernel that
# refuses says so in one line.
try_container() {
  local out
  if ! out=$(podman run --rm --network none "${BASE_IMAGES[1]}" true 2>&1); then
    die "podman cannot run a container here: $(grep -m 1 -iE 'error|denied|not permitted|refused' <<<"$out" || head -n 1 <<<"$out")"
  fi
}

# ---- the stack ----------------------------------------------------------------
# The port settings: the environment, else what up saved, else the defaults.
resolve_ports() {
  local pv name def
  for pv in "${PORT_VARS[@]}"; do
    name=${pv%%=*} def=${pv#*=}
    printf -v "$name" '%s' "${!name:-$(saved "$name")}"
    [[ -n ${!name} ]] || printf -v "$name" '%s' "$def"
    if ! [[ ${!name} =~ ^[1-9][0-9]{0,4}$ ]] || ((${!name} > 65535)); then
      die "$name=${!name} is not a port number"
    fi
    export "${name?}"
  done
}
saved() { if [[ -r $ENV_FILE ]]; then sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; fi; }

check_ports() {
  local pv name busy=()
  for pv in "${PORT_VARS[@]}"; do
    name=${pv%%=*}
    port_listening "${!name}" && busy+=("$name=${!name}")
  done
  ((${#busy[@]} == 0)) ||
    die "ports in use: ${busy[*]} (make run? another stack?) - set those variables to free ports"
}

# Jaeger, or the span counter in its place.
want_otlpsink() {
  case ${COMPOSE_OTLPSINK:-auto} in
  1) return 0 ;;
  0) return 1 ;;
  esac
  "$ENGINE" image inspect "$JAEGER_IMAGE" >/dev/null 2>&1 && return 1
  note "pulling $JAEGER_IMAGE"
  timeout 300 "$ENGINE" pull -q "$JAEGER_IMAGE" >/dev/null 2>&1 && return 1
  note "$JAEGER_IMAGE cannot be pulled here: docker-compose.otlpsink.yml's span counter takes its place"
  return 0
}

# Every container of the project running, and healthy where it has a
# health check: 0; one exited or unhealthy: 1 (it will not get better by
# waiting); otherwise 2.
stack_state() {
  local ids=() line st=0
  mapfile -t ids < <(compose ps -q 2>/dev/null)
  ((${#ids[@]} > 0)) || return 2
  while read -r line; do
    case ${line#* } in
    running/healthy | running/) ;;
    */unhealthy | exited/* | dead/*) UNWELL=$line && return 1 ;;
    *) st=2 ;;
    esac
  done < <("$ENGINE" inspect --format \
    '{{.Name}} {{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "${ids[@]}")
  return "$st"
}
wait_healthy() {
  local deadline=$((SECONDS + ${COMPOSE_WAIT:-300})) rc
  while :; do
    rc=0
    stack_state || rc=$?
    ((rc == 0)) && return 0
    if ((rc == 1)); then
      compose ps >&2 || true
      die "a container is not well ($UNWELL); see: docker-compose logs"
    fi
    if ((SECONDS >= deadline)); then
      compose ps >&2 || true
      die "the stack was not healthy within ${COMPOSE_WAIT:-300} s"
    fi
    sleep 1
  done
}

write_env() {
  local pv name
  {
    echo "# Written by scripts/compose.sh up: the running stack."
    printf 'ENGINE=%s\n' "$ENGINE"
    printf 'COMPOSE_CMD=%q\n' "${COMPOSE[*]}"
    printf 'COMPOSE_PROJECT_NAME=%s\n' "$PROJECT"
    printf 'COMPOSE_FILE=%s\n' "$COMPOSE_FILE"
    if [[ $ENGINE == podman ]]; then
      printf 'DOCKER_HOST=unix://%s\n' "$SOCKET"
      printf 'CONTAINERS_CONF=%s\n' "$STATE/containers.conf"
    fi
    for pv in "${PORT_VARS[@]}"; do
      name=${pv%%=*}
      printf '%s=%s\n' "$name" "${!name}"
    done
  } >"$ENV_FILE"
}

print_urls() {
  local pv name svc
  echo
  for pv in "${PORT_VARS[@]}"; do
    name=${pv%%=*}
    [[ $INFRA_PORTS != *" $name "* ]] || continue
    svc=${name%_PORT}
    printf '  %-13s http://127.0.0.1:%s/health\n' "${svc,,}" "${!name}"
  done
  cat <<EOF
  Prometheus    http://127.0.0.1:$PROMETHEUS_PORT/alerts
  Alertmanager  http://127.0.0.1:$ALERTMANAGER_PORT/
  RabbitMQ UI   http://127.0.0.1:$RABBITMQ_UI_PORT/ (microshop / RABBITMQ_PASSWORD)
  PostgreSQL    127.0.0.1:$POSTGRES_PORT
EOF
  if [[ $COMPOSE_FILE == *otlpsink* ]]; then
    echo "  spans         http://127.0.0.1:$JAEGER_UI_PORT/ (counted per service; no Jaeger here)"
  else
    echo "  Jaeger UI     http://127.0.0.1:$JAEGER_UI_PORT/"
  fi
  cat <<EOF

  The story against it: make demo.  Stop it: make compose-down.
  docker-compose by hand: set -a; . $ENV_FILE; set +a; $(printf '%s ' "${COMPOSE[@]}")ps
EOF
}

cmd_up() {
  mkdir -p "$STATE" "$PID_DIR"
  choose_engine
  if [[ $ENGINE == podman ]]; then
    [[ $(id -u) -eq 0 ]] || die "podman runs the stack as root here: run as root (or with a Docker engine)"
    scripts/deps.sh containers
    podman_conf
    podman info >/dev/null 2>"$STATE/podman-info.log" ||
      die "podman does not work here: $(grep -m 1 -iE 'error|denied|not permitted' "$STATE/podman-info.log" || head -n 1 "$STATE/podman-info.log")"
    export DOCKER_HOST=unix://$SOCKET
    COMPOSE=(docker-compose)
  else
    if docker compose version >/dev/null 2>&1; then
      COMPOSE=(docker compose)
    elif command -v docker-compose >/dev/null; then
      COMPOSE=(docker-compose)
    else
      die "Docker runs here but neither \`docker compose\` nor docker-compose is installed"
    fi
  fi
  PROJECT=${COMPOSE_PROJECT_NAME:-microshop}
  export COMPOSE_PROJECT_NAME=$PROJECT
  resolve_ports
  # a stack of ours already up holds its own ports: up updates it in place
  [[ -r $ENV_FILE ]] || check_ports
  # fd 3: the caller's stderr, even when the trap runs inside a redirection
  exec 3>&2
  trap 'echo "compose: up failed; stopping what it started" >&3; cmd_down quiet 2>&3' EXIT
  note "engine: $ENGINE, project $PROJECT, state $STATE"
  if [[ $ENGINE == podman ]]; then
    start_api
    start_healthchecks
    phase "engine ready"
    make_base_image
    try_container
    phase "base images"
  fi
  COMPOSE_FILE=$ROOT/docker-compose.yml
  if want_otlpsink; then COMPOSE_FILE+=":$ROOT/docker-compose.otlpsink.yml"; fi
  export COMPOSE_FILE
  write_env
  # v1 builds one image after the other unless told; v2 is parallel already
  local parallel=()
  [[ ${COMPOSE[*]} != docker-compose ]] || parallel=(--parallel)
  compose build "${parallel[@]}" -q >"$STATE/build.log" 2>&1 || {
    tail -n 30 "$STATE/build.log" >&2
    die "building the images failed (log: $STATE/build.log)"
  }
  phase "images built"
  compose up -d --remove-orphans >"$STATE/up.log" 2>&1 || {
    tail -n 20 "$STATE/up.log" >&2
    die "docker-compose up failed (log: $STATE/up.log)"
  }
  wait_healthy
  phase "stack healthy"
  trap - EXIT
  note "up in $(elapsed) s"
  print_urls
}

# A `docker-compose exec` through podman's API leaves its conmon waiting
# five minutes after the command ended (so a client may still ask for the
# exit code), even once the container is gone. Those of the containers
# named (full IDs) are stopped; no other process is touched.
stop_exec_monitors() {
  local pid id i pids=()
  (($# > 0)) || return 0
  for pid in $(pgrep -x conmon); do
    for id in "$@"; do
      if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-c $id .*--exec-attach"; then
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
      fi
    done
  done
  for ((i = 0; i < 50; i++)); do
    any_running "${pids[@]}" || break
    sleep 0.1
  done
}
any_running() { # any of these PIDs still runs (a zombie has no cmdline)
  local pid
  for pid in "$@"; do [[ -s /proc/$pid/cmdline ]] && return 0; done
  return 1
}

# down [quiet] [--volumes]
cmd_down() {
  local quiet='' volumes=() a ids=()
  for a in "$@"; do
    case $a in quiet) quiet=1 ;; --volumes) volumes=(--volumes) ;; *) usage ;; esac
  done
  if [[ -r $ENV_FILE ]]; then
    ENGINE=$(saved ENGINE) PROJECT=$(saved COMPOSE_PROJECT_NAME)
    COMPOSE_FILE=$(saved COMPOSE_FILE)
    read -r -a COMPOSE <<<"$(saved COMPOSE_CMD | sed 's/\\ / /g')"
  else
    [[ -n $quiet ]] || note "nothing to stop: no $ENV_FILE"
    ENGINE=${ENGINE:-} PROJECT=${PROJECT:-}
  fi
  if [[ -n $ENGINE && -n $PROJECT ]]; then
    export COMPOSE_PROJECT_NAME=$PROJECT COMPOSE_FILE
    resolve_ports
    if [[ $ENGINE == podman ]]; then
      export CONTAINERS_CONF=$STATE/containers.conf DOCKER_HOST=unix://$SOCKET
      start_api # down needs it; stopped below
    fi
    [[ $ENGINE != podman ]] ||
      mapfile -t ids < <(podman ps -a -q --no-trunc \
        --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null)
    compose down --remove-orphans -t 30 "${volumes[@]}" >"$STATE/down.log" 2>&1 || {
      tail -n 10 "$STATE/down.log" >&2
      echo "compose: docker-compose down failed (log: $STATE/down.log)" >&2
    }
    stop_exec_monitors "${ids[@]}"
  fi
  stop_pidfile "$HC_PIDFILE" healthchecks
  stop_pidfile "$API_PIDFILE" "$SOCKET"
  rm -f -- "$SOCKET" "$ENV_FILE"
  [[ -n $quiet ]] || note "stack ${PROJECT:-} stopped${volumes:+, volumes removed}; engine helpers stopped"
}

cmd_env() {
  [[ -r $ENV_FILE ]] || die "no stack: $ENV_FILE is missing (make compose-up)"
  grep -v '^#' "$ENV_FILE" | sed 's/^COMPOSE_CMD=.*//' | sed '/^$/d'
}

trap 'exit 130' INT TERM # so that a failed up's EXIT trap runs on Ctrl-C too
[[ $# -ge 1 ]] || usage
case $1 in
up)
  [[ $# -eq 1 ]] || usage
  cmd_up
  ;;
down)
  shift
  cmd_down "$@"
  ;;
env)
  [[ $# -eq 1 ]] || usage
  cmd_env
  ;;
ports)
  [[ $# -eq 1 ]] || usage
  printf '%s\n' "${PORT_VARS[@]}"
  ;;
healthchecks) # internal: the helper `up` starts
  [[ $# -eq 3 ]] || usage
  set_state "$2"
  export CONTAINERS_CONF=$STATE/containers.conf
  run_healthchecks "$3"
  ;;
*) usage ;;
esac
