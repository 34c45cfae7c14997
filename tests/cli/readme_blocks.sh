#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's shell and YAML blocks about the endpoint, as written (issue 18:
# nothing in the README untested): the curl lines run against a lingering
# `cachemeter demo` (its port put in place of 9464) and each must answer what
# its comment says; every ```yaml block is a Prometheus config promtool accepts.
# (The C and Python blocks: tests/c/readme_tour.sh, tests/python/test_readme.py.)
#   readme_blocks.sh README CACHEMETER
set -euo pipefail
readme=$1 bin=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"; [[ -n "${DEMO_PID:-}" ]] && kill "$DEMO_PID" 2>/dev/null || true' EXIT
fail() { echo "readme_blocks: FAIL: $*" >&2; exit 1; }

# YAML blocks: Prometheus configs.
awk '/^```yaml$/ {n++; on=1; next} on && /^```$/ {on=0; next} on {print > (dir "/block" n ".yml")}' \
  dir="$dir" "$readme"
ls "$dir"/block*.yml >/dev/null 2>&1 || fail "no yaml block in the README"
for f in "$dir"/block*.yml; do
  promtool check config "$f" >/dev/null || fail "promtool rejects the README's $(basename "$f"): $(cat "$f")"
done

# The curl block (the one that asks localhost:9464), against a running demo.
awk '/^```sh$/ {on=1; buf=""; next} on && /^```$/ {on=0; if (buf ~ /localhost:9464/) print buf; next}
     on {buf = buf $0 "\n"}' "$readme" | grep '^curl' > "$dir/curls.sh" || true
[[ -s "$dir/curls.sh" ]] || fail "no curl block in the README"
# shellcheck source=tests/common/lingering_demo.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common/lingering_demo.sh"
start_lingering_demo "$bin" || fail "the demo never said where it serves"
addr=$demo_addr
i=0
while IFS= read -r cmd; do
  i=$((i + 1))
  out=$(eval "${cmd//localhost:9464/$addr}") || fail "'$cmd' failed"
  case "$cmd" in
    *openmetrics-text*) [[ "$out" == *"# EOF"* ]] || fail "'$cmd' gave no OpenMetrics" ;;
    *name\[\]=*) grep -q '^cachemeter_cache_hits_total' <<<"$out" && ! grep -q '^cachemeter_cache_misses' <<<"$out" ||
                   fail "'$cmd' did not filter to the asked family" ;;
    */metrics.json*) [[ "$out" == *'"caches":[{"cache"'* ]] || fail "'$cmd' has no per-cache hit ratios" ;;
    */health*) [[ "$out" == *'"status":"ok"'* ]] || fail "'$cmd' is not healthy: $out" ;;
    */metrics*) grep -q '^# TYPE cachemeter_cache_hits_total counter' <<<"$out" || fail "'$cmd' gave no text format" ;;
  esac
done < "$dir/curls.sh"
stop_lingering_demo || true
echo "ok: the README's $i curl lines answer as they say, and its YAML configs pass promtool"
