#!/usr/bin/env bash
# make test: every configuration key the services read is documented, with
# the default the code has, in docs/configuration.md and in .env.example.
#
# The keys come from the binaries themselves: `<service> --help` lists
# every key its start-up read, with the default its reader passed (libsvc
# notes each svc_config_* call). A key read later than start-up would be
# missing there, so the sources are searched too: every key named in a
# svc_config_*() or getenv() call must be in some --help.
#
# Checked, each a failure with the key named:
#   - each key has a row in docs/configuration.md ("| `KEY` |", or
#     "| `<NAME>_REST` |" for a per-dependency key like PRODUCTS_REST);
#   - each documented key is read by some service;
#   - a default that is the same for every service that reads the key is
#     written in its row (as `default`), unless it depends on the machine;
#   - each key is in .env.example as "KEY=" or "# KEY=", with that same
#     default, and .env.example names no key that nothing reads.
#
# Usage: scripts/check-config.sh [BUILD]   (BUILD: the build folder, build)
set -euo pipefail
shopt -s extglob
cd "$(dirname "$0")/.."
. scripts/lib.sh

BUILD=${1:-build}
DOC=docs/configuration.md
EXAMPLE=.env.example
# Defaults that depend on the machine the binary runs on, not on the code
# alone: their rows say how they are computed.
COMPUTED=" HTTP_THREADS "

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
problem() {
  echo "check-config: $*" >&2
  fail=1
}

# KEY DEFAULT lines from each service, run where no .env can be read.
bin=$(realpath "$BUILD")
for s in $(services); do
  (cd "$tmp" && env -i PATH=/usr/bin:/bin "$bin/$s" --help) >"$tmp/$s.help" ||
    problem "$s --help failed"
  awk '/^  KEY +DEFAULT/ { on = 1; next } on && /^  [A-Z][A-Z0-9_]* / { print $1, $2 }' \
    "$tmp/$s.help" >"$tmp/$s.keys"
  [[ -s $tmp/$s.keys ]] || problem "$s --help lists no configuration keys"
done
# KEY DEFAULT, once per key; DEFAULT "*" when the services disagree.
cat "$tmp"/*.keys | sort -u | awk '
  { if ($1 in d && d[$1] != $2) d[$1] = "*"; else if (!($1 in d)) d[$1] = $2 }
  END { for (k in d) print k, d[k] }' | sort >"$tmp/keys"

# Keys named in the sources, however their call is wrapped.
grep -rhozP '(svc_config_[a-z_]+|getenv)\(\s*"\K[A-Z][A-Z0-9_]*(?=")' \
  common/src services | tr '\0' '\n' | sort -u >"$tmp/named"
while read -r key; do
  grep -q "^$key " "$tmp/keys" ||
    problem "$key is read in the sources but by no service's start-up (--help does not list it)"
done <"$tmp/named"

# Documented rows: KEY and its default cell.
awk -F'|' '/^\| `[A-Z<][A-Za-z0-9_<>]*` \|/ {
  key = $2; gsub(/[ `]/, "", key); print key "\t" $3 }' "$DOC" >"$tmp/doc"
doc_row() { # the row of key $1, or of its <NAME>_ form; empty if none
  local generic=${1/#+([A-Z0-9])_/<NAME>_}
  awk -F'\t' -v k="$1" -v g="$generic" '$1 == k { print; found = 1; exit }
    END { if (!found) exit 1 }' "$tmp/doc" ||
    awk -F'\t' -v g="$generic" '$1 == g { print; exit }' "$tmp/doc"
}

while read -r key def; do
  row=$(doc_row "$key")
  if [[ -z $row ]]; then
    problem "$key is read but has no row in $DOC"
  elif [[ $def != "-" && $def != "*" && $COMPUTED != *" $key "* &&
    ${row#*$'\t'} != *"\`$def\`"* ]]; then
    problem "$key: $DOC gives its default as${row#*$'\t'}, the code as $def"
  fi
  line=$(grep -E "^#? ?$key=" "$EXAMPLE" | head -n 1 || true)
  if [[ -z $line ]]; then
    problem "$key is read but not in $EXAMPLE"
  elif [[ $def != "-" && $def != "*" && $COMPUTED != *" $key "* &&
    ${line#*=} != "$def" ]]; then
    problem "$key: $EXAMPLE gives ${line#*=}, the code $def"
  fi
done <"$tmp/keys"

# Documented or listed, but read by nothing.
while read -r key; do
  if [[ $key == *"<NAME>_"* ]]; then
    grep -qE "^[A-Z0-9]+_${key#<NAME>_} " "$tmp/keys" ||
      problem "$DOC documents $key, which no service reads"
  else
    grep -q "^$key " "$tmp/keys" ||
      problem "$DOC documents $key, which no service reads"
  fi
done < <(cut -f1 "$tmp/doc")
while read -r key; do
  grep -q "^$key " "$tmp/keys" || problem "$EXAMPLE lists $key, which no service reads"
done < <(grep -oE '^#? ?[A-Z][A-Z0-9_]*=' "$EXAMPLE" | tr -d '# =')

if ((fail)); then
  exit 1
fi
echo "configuration: $(wc -l <"$tmp/keys") keys, each documented with its default"
