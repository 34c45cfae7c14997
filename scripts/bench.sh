#!/usr/bin/env bash
# scripts/bench.sh: builds Release in build-release/ and runs every benchmark
# program (bench/bench_*). Each writes its console output to
# RESULTS_DIR/<name>.txt and Google Benchmark JSON to RESULTS_DIR/<name>.json.
# Knobs (besides CM_BUILD_ROOT and CM_JOBS, see scripts/lib.sh):
#   CM_BENCH_OUT=DIR      results directory (default build-release/bench-results)
#   CM_BENCH_FILTER=RE    only the benchmarks matching RE (--benchmark_filter)
#   CM_BENCH_ARGS="..."   more Google Benchmark flags, e.g.
#                         "--benchmark_repetitions=5 --benchmark_min_time=0.5"
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
  -DCM_BUILD_BENCH=ON -DBUILD_TESTING=OFF -DCM_BUILD_EXAMPLES=OFF

mkdir -p "$out"
shopt -s nullglob
ran=0
for bin in "$build"/bench/bench_*; do
  [[ -f "$bin" && -x "$bin" ]] || continue
  name="$(basename "$bin")"
  cm_step "running $name"
  # shellcheck disable=SC2086 # CM_BENCH_ARGS is a list of flags on purpose
  "$bin" --benchmark_out="$out/$name.json" --benchmark_out_format=json \
    ${CM_BENCH_FILTER:+--benchmark_filter="$CM_BENCH_FILTER"} ${CM_BENCH_ARGS:-} |
    tee "$out/$name.txt"
  ran=$((ran + 1))
done
if ((ran == 0)); then
  echo "bench.sh: no bench_* program in $build/bench" >&2
  exit 1
fi
cm_step "done: $ran benchmark program(s); results in $out"
