#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/cli/check_cli.sh CACHEMETER: the command-line program as a user meets
# it: help, bad arguments (non-zero exit, a message naming the problem), a
# short demo (summary table for every cache) and dumps in all three formats
# (the JSON one parsed by Python's strict parser).
set -euo pipefail
bin="$1"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
fail() { echo "check_cli: FAIL: $*" >&2; echo "--- output:" >&2; cat "$out" >&2; exit 1; }

# expect_exit CODE REGEX ARGS...: runs the program, checks exit code and output.
expect_exit() {
  local code="$1" re="$2"; shift 2
  local rc=0
  "$bin" "$@" >"$out" 2>&1 || rc=$?
  [[ "$rc" == "$code" ]] || fail "'cachemeter $*' exited $rc, expected $code"
  grep -Eq -- "$re" "$out" || fail "'cachemeter $*' printed nothing matching /$re/"
  echo "ok: cachemeter $* (exit $rc)"
}

expect_exit 0 '^usage: cachemeter <command>' --help
expect_exit 0 '^usage: cachemeter demo' demo --help
expect_exit 0 '^usage: cachemeter dump' dump --help
expect_exit 0 '^cachemeter [0-9]+\.[0-9]+\.[0-9]+$' --version
expect_exit 2 'no command given' 
expect_exit 2 'unknown command "frobnicate"' frobnicate
expect_exit 2 'unknown option "--bogus"' demo --bogus
expect_exit 2 '--seconds needs a number' demo --seconds soon
expect_exit 2 '--threads needs a number' demo --threads 0
expect_exit 2 '--seconds needs a value' demo --seconds
expect_exit 2 '--format must be prometheus, openmetrics or json' dump --format xml
expect_exit 1 'unknown scheme "nosuch"' demo --seconds 0.1 --uri nosuch://
expect_exit 1 'unknown option "colour"' demo --seconds 0.1 --uri 'memory://?colour=blue'

# A short demo: every cache in the summary with a hit ratio, and a total.
expect_exit 0 '^cache +ops +hit ratio' demo --seconds 0.5 --threads 2 --keys 2000 --quiet
for c in users sessions pages; do
  grep -Eq "^$c +[1-9][0-9]* +[0-9.]+%" "$out" || fail "no summary row for cache $c"
done
grep -Eq '^[1-9][0-9]* operations in [0-9.]+ s' "$out" || fail "no total line"

# Against a dead backend every operation fails: the run fails (exit 1) and
# prints the real error, carried from the worker threads (cm_errmsg() is per
# thread), not an empty "last error" and a rate of failures per second.
dead_port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
expect_exit 1 "every operation failed: CM_EUNAVAILABLE: .*127\.0\.0\.1:$dead_port" demo --seconds 0.3 --threads 1 \
  --listen off --uri "redis://127.0.0.1:$dead_port?timeout_ms=200&connect_timeout_ms=200"
grep -Eq "^0 operations in [0-9.]+ s: 0 ops/s \(and [1-9][0-9]* failed\)" "$out" || fail "the total does not say that everything failed"

# Dumps.
expect_exit 0 '^cachemeter_cache_hits_total\{app="cachemeter_demo",cache="users",backend="memory"\} [1-9]' \
  dump --demo --seconds 0.2 --keys 1000
promtool check metrics <"$out" || fail "promtool check metrics rejects the dump"
expect_exit 0 '^# EOF$' dump --demo --format openmetrics --seconds 0.2 --keys 1000
/usr/bin/python3 -c '
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse
names = {f.name for f in parse(open(sys.argv[1]).read())}
assert "cachemeter_cache_hits" in names, names
' "$out" || fail "the OpenMetrics dump does not parse or lacks cachemeter_cache_hits"
expect_exit 0 '"cachemeter_cache_operation_duration_seconds"' dump --demo --format json --seconds 0.2 --keys 1000
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert any(f["name"]=="cachemeter_cache_misses_total" for f in d["families"])' "$out" ||
  fail "the JSON dump does not parse or lacks cachemeter_cache_misses_total"
# A shared metrics directory (docs/multiprocess.md): two demo "workers" at
# once, then a third; dump --shared and a serve --shared sidecar show the
# pool, and the totals only grow as workers come and go.
shared="$(mktemp -d)/metrics"
trap 'rm -f "$out"; rm -rf "$(dirname "$shared")"; [[ -n "${serve_pid:-}" ]] && kill "$serve_pid" 2>/dev/null || true' EXIT
expect_exit 2 'serve needs --shared DIR' serve
expect_exit 2 'unknown option "--seconds"' serve --shared "$shared" --seconds 1
expect_exit 1 'reading .*CM_EUNAVAILABLE' dump --shared "$shared"
hits() {  # the pool's users hits, from a dump --shared
  "$bin" dump --shared "$shared" >"$out" 2>&1 || fail "dump --shared failed"
  sed -n 's/^cachemeter_cache_hits_total{cache="users",backend="memory"} \([0-9]*\)$/\1/p' "$out"
}
"$bin" demo --shared "$shared" --seconds 0.3 --threads 1 --keys 1000 --listen off --quiet >/dev/null &
w1=$!
"$bin" demo --shared "$shared" --seconds 0.3 --threads 1 --keys 1000 --listen off --quiet >/dev/null ||
  fail "a demo worker on $shared failed"
wait "$w1" || fail "the other demo worker on $shared failed"
h1="$(hits)"
[[ "$h1" =~ ^[1-9][0-9]*$ ]] || fail "dump --shared shows no users hits"
promtool check metrics <"$out" || fail "promtool check metrics rejects the dump --shared"
"$bin" demo --shared "$shared" --seconds 0.2 --threads 1 --keys 1000 --listen off --quiet >/dev/null ||
  fail "the third demo worker failed"
h2="$(hits)"
((h2 > h1)) || fail "the pool's hits went from $h1 to $h2 after a third worker"
echo "ok: dump --shared: users hits $h1 after two workers, $h2 after a third"
# The sidecar: port 0 picks one; it prints where it serves.
"$bin" serve --shared "$shared" --listen 127.0.0.1:0 >"$out.serve" 2>&1 &
serve_pid=$!
port=""
for _ in $(seq 1 500); do  # up to ~10 s for the line
  port="$(sed -n 's|^serving .* on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$out.serve" 2>/dev/null)"
  [[ -n "$port" ]] && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$out.serve" >&2; fail "serve --shared exited"; }
  sleep 0.02
done
[[ -n "$port" ]] || fail "serve --shared never said where it serves"
/usr/bin/python3 - "$port" "$h2" <<'PY' || fail "the sidecar's /metrics does not show the pool"
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode()
want = f'cachemeter_cache_hits_total{{cache="users",backend="memory"}} {sys.argv[2]}'
assert want in body.splitlines(), (want, body[:2000])
PY
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "serve --shared did not exit cleanly on SIGTERM"
serve_pid=""
rm -f "$out.serve"
echo "ok: serve --shared on port $port shows the pool"

# CLI nits (issue 18): ranges print as written, `version` works, a bad
# --listen fails before anything runs (no banner), dump --db of a missing
# file says so.
expect_exit 2 '--threads needs a number in \[1, 256\], got "999"' demo --threads 999
expect_exit 0 '^cachemeter [0-9]+\.[0-9]+\.[0-9]+$' version
expect_exit 2 '--listen needs host:port' demo --listen foo
grep -q 'demo:' "$out" && fail "--listen foo: the banner was printed before the error"
expect_exit 1 '[Nn]o such file' dump --db "$(dirname "$out")/cm-no-such-file.db"
expect_exit 2 'demo options .* go with --demo' dump --seconds 1
expect_exit 2 'exclude each other' dump --demo --db x.db
echo "ok: CLI nits"

# dump --from: what a running endpoint serves (a lingering demo), in each
# format; a port nobody serves says so.
# shellcheck source=tests/common/lingering_demo.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common/lingering_demo.sh"
start_lingering_demo "$bin" || fail "the lingering demo never said where it serves"
addr=$demo_addr
expect_exit 0 '^cachemeter_cache_hits_total\{app="cachemeter_demo",cache="users",backend="memory"\} [1-9]' dump --from "$addr"
expect_exit 0 '^# EOF$' dump --from "$addr" --format openmetrics
expect_exit 0 '"caches":\[\{"cache"' dump --from "$addr" --format json
stop_lingering_demo || fail "the lingering demo did not exit cleanly"
expect_exit 1 'no endpoint answers on 127.0.0.1:1' dump --from 127.0.0.1:1
echo "ok: dump --from a running endpoint"

echo "check_cli: all checks passed"
