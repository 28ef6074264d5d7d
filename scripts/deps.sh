#!/usr/bin/env bash
# Installs the Debian 12 packages microshop needs to build, test and benchmark.
# Checks each package with `dpkg-query` first: on a prepared machine it does
# nothing and prints nothing. Only when something is missing does it run
# `apt-get update` once and install the missing packages (needs root).
#
# Usage: scripts/deps.sh [containers]
#   containers  also what runs docker-compose.yml where there is no Docker
#               engine (scripts/compose.sh): podman with the runc runtime
#               and netavark networking, debootstrap for the base images
set -euo pipefail

PACKAGES=(
  build-essential clang clang-format pkg-config make
  libmicrohttpd-dev libpq-dev librabbitmq-dev libjansson-dev
  libcurl4-openssl-dev libssl-dev uuid-dev check
  postgresql postgresql-contrib rabbitmq-server amqp-tools
  wrk curl jq valgrind libclang-rt-14-dev docker-compose prometheus
  systemd python3-yaml # scripts/check-deploy.sh: systemd-analyze, manifests
)
case ${1:-} in
'') ;;
containers)
  PACKAGES+=(podman runc netavark aardvark-dns iptables debootstrap docker-compose)
  ;;
*)
  echo "usage: $0 [containers]" >&2
  exit 2
  ;;
esac

missing=()
for pkg in "${PACKAGES[@]}"; do
  # A removed-but-not-purged package is known to dpkg too (state
  # "deinstall ok config-files"): only "install ok installed" counts.
  if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "deps.sh: missing packages (run as root to install): ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
