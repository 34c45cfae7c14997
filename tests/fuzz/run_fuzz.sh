#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/fuzz/run_fuzz.sh: how CTest runs a libFuzzer harness (README.md here).
#   run_fuzz.sh replay HARNESS DIR [-- libFuzzer args...]
#       runs every file of DIR/corpus and DIR/regressions once; fails on the
#       first crash, leak, sanitizer report or timeout
#   run_fuzz.sh run HARNESS DIR WORK SECONDS [-- libFuzzer args...]
#       fuzzes for SECONDS on a fresh copy of DIR/corpus in WORK/corpus (the
#       committed corpus is never written), with DIR/dict when present; a
#       finding fails the run and is left in WORK/findings/
# Limits (both modes): -timeout=10 s per input, -rss_limit_mb=2048.
set -euo pipefail

mode="$1"
bin="$2"
dir="$3"
shift 3
work=""
seconds=""
if [[ "$mode" == run ]]; then
  work="$1"
  seconds="$2"
  shift 2
fi
[[ "${1:-}" == "--" ]] && shift
extra=("$@")
name="$(basename "$dir")"
limits=(-timeout=10 -rss_limit_mb=2048)

# Every sanitizer report is fatal; libFuzzer does its own leak checking.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

case "$mode" in
  replay)
    shopt -s nullglob
    files=("$dir"/corpus/* "$dir"/regressions/*)
    if ((${#files[@]} == 0)); then
      echo "fuzz.$name.replay: no inputs in $dir/corpus or $dir/regressions" >&2
      exit 1
    fi
    echo "fuzz.$name.replay: ${#files[@]} inputs"
    # Explicit files: libFuzzer runs each once and stops at the first failure.
    exec "$bin" "${limits[@]}" "${extra[@]}" "${files[@]}"
    ;;
  run)
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/findings"
    cp "$dir"/corpus/* "$work/corpus/"
    dict=()
    [[ -f "$dir/dict" ]] && dict=(-dict="$dir/dict")
    rc=0
    (cd "$work" && "$bin" "${limits[@]}" "${dict[@]}" "${extra[@]}" -max_total_time="$seconds" \
       -print_final_stats=1 -artifact_prefix="$work/findings/" corpus) || rc=$?
    if ((rc != 0)); then
      echo "fuzz.$name.run: FINDING (exit $rc). Inputs left in $work/findings:" >&2
      ls -l "$work/findings" >&2 || true
      echo "Reproduce: $bin <file>; keep it as a regression input:" >&2
      echo "  cp $work/findings/<file> tests/fuzz/$name/regressions/" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: run_fuzz.sh replay|run ..." >&2
    exit 2
    ;;
esac
