#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs examples/cache_backends against a real redis-server (Debian's), started
# here on a unix socket in a scratch directory (no TCP port) and stopped at
# exit; every backend must load each user once and then hit (3 hits in 7
# lookups: 3 loads, 3 hits, 1 unknown user).
#   run_cache_backends.sh CACHE_BACKENDS
set -euo pipefail
bin=$1
dir=$(mktemp -d)
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
redis-server --port 0 --unixsocket "$dir/redis.sock" --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pid=$!
for _ in $(seq 1 400); do
  redis-cli -s "$dir/redis.sock" ping 2>/dev/null | grep -q PONG && break
  sleep 0.025
done
redis-cli -s "$dir/redis.sock" ping | grep -q PONG || { cat "$dir/redis.log"; exit 1; }
out=$(cd "$dir" && "$bin" "redis+unix://$dir/redis.sock")
echo "$out"
for name in memory sqlite redis tiered; do
  grep -Eq "^$name +.* loads=4 \"hit_ratio\":0\.42857" <<<"$out" || { echo "FAIL: $name" >&2; exit 1; }
done
echo "ok: every backend loaded each user once, then hit"
