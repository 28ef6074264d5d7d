#!/usr/bin/env bash
# Installs the Debian 12 packages microshop needs to build, test and benchmark.
# Checks each package with `dpkg -s` first: on a prepared machine it does
# nothing and prints nothing. Only when something is missing does it run
# `apt-get update` once and install the missing packages (needs root).
#
# Usage: scripts/deps.sh
set -euo pipefail

PACKAGES=(
  build-essential clang clang-format pkg-config make
  libmicrohttpd-dev libpq-dev librabbitmq-dev libjansson-dev
  libcurl4-openssl-dev libssl-dev uuid-dev check
  postgresql postgresql-contrib rabbitmq-server amqp-tools
  wrk curl jq valgrind libclang-rt-14-dev docker-compose prometheus
  systemd python3-yaml # scripts/check-deploy.sh: systemd-analyze, manifests
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  # `dpkg -s` alone also succeeds for removed-but-not-purged packages
  # (state "deinstall ok config-files"): check for "install ok installed".
  if ! dpkg -s "$pkg" 2>/dev/null | grep -qx 'Status: install ok installed'; then
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
