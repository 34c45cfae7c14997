#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/http_bench.sh: loads the embedded HTTP endpoint (tests/http/cm_http_fixture)
# and prometheus-cpp's civetweb Exposer (bench/exposer_promcpp) with wrk in one
# run, and prints markdown tables: scrape throughput and latency with 1k series
# under concurrent writers (the ratio is the figure to quote), then the time one
# scrape takes with 10k and 100k series, plain and gzip'd. Builds nothing.
#
# usage: bash bench/http_bench.sh [BUILD_DIR]      (default: build-release)
# Knobs: CM_HTTP_BENCH_DURATION (wrk -d of the load runs, default 10s),
#        CM_HTTP_BENCH_RENDER_DURATION (of the render runs, default 5s).
# Needs wrk and curl (Debian: wrk, curl). Only one server runs at a time, so
# its writer threads never steal CPU from the other's measurement. Everything
# binds 127.0.0.1.
set -euo pipefail

build="${1:-build-release}"
duration="${CM_HTTP_BENCH_DURATION:-10s}"
render_duration="${CM_HTTP_BENCH_RENDER_DURATION:-5s}"
fixture="$build/tests/http/cm_http_fixture"
exposer="$build/bench/exposer_promcpp"

die() {
  echo "http_bench.sh: $*" >&2
  exit 1
}
for tool in wrk curl; do command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install $tool)"; done
[[ -x "$fixture" ]] || die "$fixture missing: configure with -DCM_WITH_HTTP=ON and build cm_http_fixture"
[[ -x "$exposer" ]] || die "$exposer missing: needs prometheus-cpp-dev (prometheus-cpp::pull) at configure time"

tmp="$(mktemp -d)"
server_pid=""
stop_server() {
  [[ -n "$server_pid" ]] || return 0
  { echo quit >&3; } 2>/dev/null || true
  exec 3>&-
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "http_bench.sh: server $server_pid ignored quit; killing it" >&2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap 'stop_server; rm -rf "$tmp"' EXIT

# start_server CMD...: runs it with its stdin on fd 3 (a fifo), waits for its
# "PORT <n>" line and sets $port.
start_server() {
  rm -f "$tmp/in" "$tmp/out"
  mkfifo "$tmp/in"
  "$@" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
  server_pid=$!
  exec 3>"$tmp/in"
  local i
  port=""
  for ((i = 0; i < 600; i++)); do  # up to 60 s: 100k series take a while to register
    port="$(awk '$1 == "PORT" { print $2; exit }' "$tmp/out")"
    [[ -n "$port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || die "$1 exited: $(cat "$tmp/err")"
    sleep 0.1
  done
  [[ -n "$port" ]] || die "$1 printed no PORT line within 60 s"
  curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" || die "$1: GET /metrics failed"
}

# wrk_run THREADS CONNS DURATION URL [WRK ARGS...]: wrk's report in $tmp/wrk.txt.
wrk_run() {
  wrk -t"$1" -c"$2" -d"$3" --timeout 10s --latency "${@:5}" "$4" >"$tmp/wrk.txt" 2>&1 ||
    die "wrk failed: $(cat "$tmp/wrk.txt")"
}

# Figures from the last wrk report; latencies in ms.
wrk_field() {
  awk -v want="$1" '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
      return v
    }
    want == "rps" && $1 == "Requests/sec:" { printf "%.0f", $2 }
    want == "avg" && $1 == "Latency" && NF >= 4 && !done_avg { printf "%.3f", ms($2); done_avg = 1 }
    want == "p50" && $1 == "50%" { printf "%.3f", ms($2) }
    want == "p99" && $1 == "99%" { printf "%.3f", ms($2) }
    want == "requests" && / requests in / { print $1 }
    # Failures: refused, write errors, timeouts, non-2xx. wrk also counts a
    # "read" error whenever the server closes the connection after answering
    # (civetweb without keep-alive does, every time): reported apart.
    want == "errors" && $1 == "Socket" { gsub(",", ""); e += $4 + $8 + $10 }
    want == "closed" && $1 == "Socket" { gsub(",", ""); c += $6 }
    want == "errors" && $1 == "Non-2xx" { e += $NF }
    END { if (want == "errors") print e + 0; if (want == "closed") print c + 0 }
  ' "$tmp/wrk.txt"
}

bytes() {  # bytes [curl args...] URL: size of the body as sent
  curl -s -o /dev/null -w '%{size_download}' "$@"
}

echo "# HTTP scrape benchmark"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)),"
echo "$(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), build dir $build."
echo "wrk, the server's HTTP thread(s) and the writer threads all share these CPUs: the"
echo "absolute figures are what this machine gives under that contention; read the ratios."
echo

# ---- 1. throughput: 1k series, writers busy ---------------------------------
declare -A rps p50 p99 avg err closed sz gz nreq
load() {  # load KEY CONNECTION_HEADER CMD...
  local key="$1" conn="$2"
  shift 2
  start_server "$@"
  local url="http://127.0.0.1:$port/metrics"
  sz[$key]="$(bytes "$url")"
  gz[$key]="$(bytes -H 'Accept-Encoding: gzip' "$url")"
  if [[ -n "$conn" ]]; then
    wrk_run 2 16 "$duration" "$url" -H "Connection: $conn"
  else
    wrk_run 2 16 "$duration" "$url"
  fi
  rps[$key]="$(wrk_field rps)"
  p50[$key]="$(wrk_field p50)"
  p99[$key]="$(wrk_field p99)"
  avg[$key]="$(wrk_field avg)"
  err[$key]="$(wrk_field errors)"
  closed[$key]="$(wrk_field closed)"
  nreq[$key]="$(wrk_field requests)"
  stop_server
}
for w in 2 0; do
  load "ours$w" "" "$fixture" --series 1000 --writers "$w"
  load "prom$w" "" "$exposer" --series 1000 --writers "$w"
done
# prometheus-cpp closes the connection after every answer; cachemeter keeps
# it open. This row takes keep-alive out of the comparison.
load ours2close close "$fixture" --series 1000 --writers 2

echo "## Scrape throughput: 1k counter series, wrk -t2 -c16 -d$duration"
echo
echo "cachemeter: cm_http_fixture (libmicrohttpd, 1 server thread, epoll, keep-alive)."
echo "prometheus-cpp 1.0.1: exposer_promcpp (civetweb Exposer, 2 worker threads, its defaults)."
echo "Writers: threads adding 1 to the series in a tight loop during the run. errors: refused,"
echo "write errors, timeouts, non-2xx; closed by server: answers after which the server"
echo "closed the connection (wrk counts them as read errors; the requests succeeded)."
echo
echo "| server | writers | requests/s | p50 | p99 | mean | requests | errors | closed by server | payload bytes | gzip bytes |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for k in ours2 prom2 ours2close ours0 prom0; do
  case $k in
    ours2close) name="cachemeter, Connection: close" ;;
    ours*) name=cachemeter ;;
    prom*) name=prometheus-cpp ;;
  esac
  w="${k:4:1}"
  echo "| $name | $w | ${rps[$k]} | ${p50[$k]} ms | ${p99[$k]} ms | ${avg[$k]} ms | ${nreq[$k]} | ${err[$k]} | ${closed[$k]} | ${sz[$k]} | ${gz[$k]} |"
done
echo
ratio() {  # ratio LABEL OURS_KEY PROM_KEY
  awk -v a="${rps[$2]}" -v b="${rps[$3]}" -v l="$1" \
    'BEGIN { printf "- %s: cachemeter / prometheus-cpp requests/s = %.2fx (target >= 2x: %s)\n", l, a / b, (a >= 2 * b) ? "met" : "NOT met" }'
}
ratio "2 writers" ours2 prom2
ratio "2 writers, cachemeter without keep-alive" ours2close prom2
ratio "no writers" ours0 prom0
echo

# ---- 2. render time: one scrape at a time, 10k and 100k series --------------
# Plain, and gzip'd as Prometheus asks for it (Accept-Encoding: gzip): both
# servers compress each answer anew, so that row is render + deflate.
echo "## Time per scrape: one connection (wrk -t1 -c1 -d$render_duration), no writers"
echo
echo "| server | series | encoding | mean per scrape | p50 | p99 | scrapes | body bytes |"
echo "|---|---|---|---|---|---|---|---|"
for n in 10000 100000; do
  for which in cachemeter prometheus-cpp; do
    if [[ $which == cachemeter ]]; then
      start_server "$fixture" --series "$n"
    else
      start_server "$exposer" --series "$n" --writers 0
    fi
    url="http://127.0.0.1:$port/metrics"
    for enc in identity gzip; do
      b="$(bytes -H "Accept-Encoding: $enc" "$url")"
      wrk_run 1 1 "$render_duration" "$url" -H "Accept-Encoding: $enc"
      echo "| $which | $n | $enc | $(wrk_field avg) ms | $(wrk_field p50) ms | $(wrk_field p99) ms | $(wrk_field requests) | $b |"
    done
    stop_server
  done
done
