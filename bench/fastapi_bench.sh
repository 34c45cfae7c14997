#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/fastapi_bench.sh: examples/fastapi_app.py under uvicorn (one worker),
# loaded with wrk on the same endpoint with async @cached (/users/1: a hit
# after the first request) and without (/uncached/users/1: the handler's
# 5 ms of work every time), in one run, one after the other.
#
# usage: bash bench/fastapi_bench.sh [BUILD_DIR]   (default: build-release; its bindings/python)
# Knobs: CM_FASTAPI_BENCH_DURATION (wrk -d, default 10s), CM_FASTAPI_BENCH_CONNS (-c, default 32).
# Needs wrk, python3-fastapi, python3-uvicorn. Binds 127.0.0.1.
set -euo pipefail

build="${1:-build-release}"
duration="${CM_FASTAPI_BENCH_DURATION:-10s}"
conns="${CM_FASTAPI_BENCH_CONNS:-32}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$(mktemp)"
PYTHONPATH="$build/bindings/python" /usr/bin/python3 -m uvicorn --app-dir "$root/examples" --host 127.0.0.1 \
  --port "$port" --log-level warning fastapi_app:app >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 200); do
  curl -fs "http://127.0.0.1:$port/users/1" >/dev/null && break
  sleep 0.05
done
curl -fs "http://127.0.0.1:$port/users/1" >/dev/null || { cat "$log"; exit 1; }

echo "| endpoint | requests/s | latency p50 | p99 |"
echo "|---|---|---|---|"
for path in /users/1 /uncached/users/1; do
  out="$(wrk -t2 -c"$conns" -d"$duration" --latency "http://127.0.0.1:$port$path")"
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  echo "| \`$path\` | $rps | $p50 | $p99 |"
done
