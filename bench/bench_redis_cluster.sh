#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/bench_redis_cluster.sh BUILD_DIR: starts a 3-primary Redis Cluster on
# free 127.0.0.1 ports (redis-cli --cluster create), runs
# BUILD_DIR/bench/bench_redis_cluster against it (redis+cluster:// vs raw
# hiredis, paired, and the first call after a MOVED), then
# `redis-benchmark --cluster` (1 client, pipeline 1) against the same
# cluster, and stops it.
set -euo pipefail
build="${1:?usage: bench/bench_redis_cluster.sh BUILD_DIR}"
dir="$(mktemp -d /tmp/cm-bench-cluster-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
port_pair_free() {  # a port below 55536 whose bus port (+10000) is free too
  /usr/bin/python3 - <<'PY'
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p > 55535: continue
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 10000)); b.close(); print(p); break
    except OSError:
        b.close()
PY
}
ports=()
for i in 1 2 3; do
  p="$(port_pair_free)"
  mkdir -p "$dir/$p"
  /usr/bin/redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/$p" \
    --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" --daemonize no \
    --loglevel warning --logfile "$dir/$p/redis.log" &
  pids+=($!)
  ports+=("$p")
done
for p in "${ports[@]}"; do
  for _ in $(seq 200); do
    [[ "$(timeout 2 redis-cli -p "$p" ping 2>/dev/null)" == PONG ]] && break
    sleep 0.1
  done
done
redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1
for p in "${ports[@]}"; do
  for _ in $(seq 300); do
    redis-cli -p "$p" cluster info | grep -q cluster_state:ok && break
    sleep 0.1
  done
done
CM_BENCH_CLUSTER_PORTS="$(IFS=,; echo "${ports[*]}")" "$build/bench/bench_redis_cluster"
echo "redis-benchmark --cluster -c 1 -P 1 -n 100000 -d 120 -t get,set:"
redis-benchmark --cluster -h 127.0.0.1 -p "${ports[0]}" -c 1 -P 1 -n 100000 -d 120 -t get,set -q 2>&1 | tr "\r" "\n" |
  grep -E "^(GET|SET): .*requests per second" || true
