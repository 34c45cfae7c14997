#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/bench.sh: builds Release in build-release/ and runs every benchmark
# program (bench/bench_*). Each writes its console output to
# RESULTS_DIR/<name>.txt and Google Benchmark JSON to RESULTS_DIR/<name>.json.
# Knobs (besides CM_BUILD_ROOT and CM_JOBS, see scripts/lib.sh):
#   CM_BENCH_OUT=DIR      results directory (default build-release/bench-results)
#   CM_BENCH_FILTER=RE    only the benchmarks matching RE (--benchmark_filter)
#   CM_BENCH_ARGS="..."   more Google Benchmark flags, e.g.
#                         "--benchmark_repetitions=5 --benchmark_min_time=0.5"
# bench_redis runs against a redis-server this script starts (free port on
# 127.0.0.1 and a unix socket, no persistence; stopped at exit), and
# `redis-benchmark -c 1 -P 1 -t get,set` runs against the same server right
# after it (RESULTS_DIR/redis-benchmark.txt).
# Run it on an otherwise idle machine: the figures compare against a baseline
# measured in the same run, but noise from other processes still shows.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build="$CM_BUILD_ROOT/build-release"
out="${CM_BENCH_OUT:-$build/bench-results}"

cm_step "setup: Debian packages"
cm_setup
cm_step "build-release/: Release build (tests off)"
cm_configure_build "$build" -DCMAKE_BUILD_TYPE=Release -DCM_SANITIZE= \
  -DCM_BUILD_BENCH=ON -DBUILD_TESTING=OFF -DCM_BUILD_EXAMPLES=OFF -DCM_WITH_PYTHON=ON

# The redis-server of bench_redis and redis-benchmark.
redis_pid="" redis_dir="" redis_port=""
stop_redis() {
  if [[ -n "$redis_pid" ]]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  fi
  [[ -z "$redis_dir" ]] || rm -rf "$redis_dir"
  redis_dir=""
}
trap stop_redis EXIT
start_redis() {
  redis_dir="$(mktemp -d /tmp/cm-bench-redis-XXXXXX)"
  redis_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  /usr/bin/redis-server --port "$redis_port" --bind 127.0.0.1 --unixsocket "$redis_dir/redis.sock" \
    --unixsocketperm 700 --save "" --appendonly no --dir "$redis_dir" --daemonize no \
    --loglevel warning --logfile "$redis_dir/redis.log" &
  redis_pid=$!
  local _
  for _ in $(seq 200); do  # 20 s at most
    [[ "$(timeout 2 redis-cli -p "$redis_port" ping 2>/dev/null)" == PONG ]] && return 0
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench.sh: redis-server did not start:" >&2
  cat "$redis_dir/redis.log" >&2
  exit 1
}

mkdir -p "$out"
shopt -s nullglob
ran=0
for bin in "$build"/bench/bench_*; do
  [[ -f "$bin" && -x "$bin" ]] || continue
  name="$(basename "$bin")"
  cm_step "running $name"
  envs=()
  if [[ "$name" == bench_redis ]]; then
    start_redis
    envs=(CM_BENCH_REDIS_PORT="$redis_port" CM_BENCH_REDIS_SOCKET="$redis_dir/redis.sock")
  fi
  # shellcheck disable=SC2086 # CM_BENCH_ARGS is a list of flags on purpose
  env "${envs[@]}" "$bin" --benchmark_out="$out/$name.json" --benchmark_out_format=json \
    ${CM_BENCH_FILTER:+--benchmark_filter="$CM_BENCH_FILTER"} ${CM_BENCH_ARGS:-} |
    tee "$out/$name.txt"
  if [[ "$name" == bench_redis ]]; then
    cm_step "redis-benchmark -c 1 -P 1 against the same redis-server (beside bench_redis)"
    for where in "-p $redis_port" "-s $redis_dir/redis.sock"; do
      echo "redis-benchmark $where -c 1 -P 1 -t get,set -n 100000 -d 100 -q"
      # shellcheck disable=SC2086 # $where is an option and its value
      redis-benchmark $where -c 1 -P 1 -t get,set -n 100000 -d 100 -q | tr '\r' '\n' |
        grep -v -e '^[[:space:]]*$' -e 'rps='
    done | tee "$out/redis-benchmark.txt"
    stop_redis
  fi
  ran=$((ran + 1))
done
if ((ran == 0)); then
  echo "bench.sh: no bench_* program in $build/bench" >&2
  exit 1
fi
# The Python binding beside prometheus_client, lru_cache, cachetools and a
# locked dict, in one interpreter (bench/bench_python.py).
cm_step "running bench_python.py (the Python binding)"
PYTHONPATH="$build/bindings/python" /usr/bin/python3 "$CM_ROOT/bench/bench_python.py" \
  --json "$out/bench_python.json" | tee "$out/bench_python.txt"
ran=$((ran + 1))
# Getting each cache operation to StatsD: an aggregating exporter vs
# python3-statsd's datagram per operation (bench/bench_statsd.py).
cm_step "running bench_statsd.py (exporters from Python)"
PYTHONPATH="$build/bindings/python" /usr/bin/python3 "$CM_ROOT/bench/bench_statsd.py" | tee "$out/bench_statsd.txt"
ran=$((ran + 1))
cm_step "done: $ran benchmark program(s); results in $out"
