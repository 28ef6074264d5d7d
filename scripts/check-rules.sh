#!/usr/bin/env bash
# Checks the Prometheus configuration, rules and alerts in deploy/prometheus/:
#   promtool check config   prometheus.yml (and the rule files it names)
#   promtool check rules    rules/*.yml
#   promtool test rules     tests/*.yml (unit tests of every rule)
# and that every alert has a runbook (its runbook_url, docs/runbooks/<alert>.md)
# and at least one unit test. Exits non-zero on the first failure.
# Needs promtool (Debian package prometheus; scripts/deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=deploy/prometheus
if ! command -v promtool >/dev/null; then
  echo "check-rules: promtool not found (apt-get install prometheus)" >&2
  exit 1
fi

promtool check config "$dir/prometheus.yml"
promtool check rules "$dir"/rules/*.yml
promtool test rules "$dir"/tests/*.yml

status=0
alerts=$(sed -n 's/^[[:space:]]*- alert:[[:space:]]*\([A-Za-z0-9_]*\).*/\1/p' "$dir"/rules/*.yml)
if [[ -z $alerts ]]; then
  echo "check-rules: no alerts found in $dir/rules" >&2
  exit 1
fi
for a in $alerts; do
  runbook=docs/runbooks/$a.md
  if ! grep -q "runbook_url: $runbook\$" "$dir"/rules/*.yml; then
    echo "FAIL: alert $a: runbook_url is not $runbook" >&2
    status=1
  fi
  if [[ ! -f $runbook ]]; then
    echo "FAIL: alert $a: $runbook does not exist" >&2
    status=1
  fi
  if ! grep -q "alertname: $a\$" "$dir"/tests/*.yml; then
    echo "FAIL: alert $a: no test in $dir/tests" >&2
    status=1
  fi
done
if ((status == 0)); then
  echo "check-rules: $(wc -w <<<"$alerts") alerts, each with a runbook and tests"
fi
exit "$status"
