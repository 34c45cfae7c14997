#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/test.sh: THE test command (README; .ci/run calls it).
#   1. scripts/setup.sh (installs missing Debian packages)
#   2. build/       RelWithDebInfo: everything (benchmarks compile, not run),
#                   the Python and Java bindings included; every CTest test,
#                   packaging, python and java included
#   3. build-asan/  ASan+UBSan: every test except packaging
#   4. build-tsan/  TSan: the tests labelled "concurrency"
#   5. build-fuzz/  clang, libFuzzer + ASan+UBSan: the tests labelled "fuzz"
#                   (every corpus and regression input replayed, then each
#                   harness fuzzed for CM_FUZZ_SECONDS; tests/fuzz/README.md)
# Stops at the first failure (non-zero exit). The last line is always
# "N passed, N failed" (summed over the ctest runs): CI reads it.
#
# Environment knobs:
#   CM_BUILD_ROOT=DIR     put the build directories in DIR (default: repo root)
#   CM_JOBS=N             compile and test jobs (default 2)
#   CM_TEST_SKIP_ASAN=1   skip step 3    } for quick local runs;
#   CM_TEST_SKIP_TSAN=1   skip step 4    } CI runs everything
#   CM_TEST_SKIP_FUZZ=1   skip step 5    }
#   CM_FUZZ_SECONDS=S     fuzzing time per harness in step 5 (default 20)
#   CM_TEST_TIMEOUT=S     per-test timeout in seconds unless the test sets its
#                         own (default 300)
#   ASAN_OPTIONS, UBSAN_OPTIONS, TSAN_OPTIONS   override the defaults below
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Every sanitizer report is fatal, leaks included.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# die_after_fork=0: a shared registry's fork child starts its own threads
# (its collectors' refresher, docs/multiprocess.md) after a fork() from a
# process that has threads, as pre-fork servers do; TSan would kill it.
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:die_after_fork=0}"

passed=0
failed=0
timings=()
summary() {
  local rc=$?
  if ((rc != 0)); then
    echo "test.sh: FAILED (exit $rc) during: ${current:-setup}" >&2
    [[ -z "${current:-}" ]] || timings+=("$current=$((SECONDS - phase_start))s(failed)")
  fi
  if ((${#timings[@]})); then printf 'test.sh: phase timings: %s\n' "${timings[*]}"; fi
  echo "$passed passed, $failed failed"
}
trap summary EXIT

phase() {
  if [[ -n "${current:-}" ]]; then timings+=("$current=$((SECONDS - phase_start))s"); fi
  current="$1"
  phase_start=$SECONDS
}

# run_ctest DIR [ctest args...]: runs ctest, adds its counts to the totals.
# An empty selection is an error (--no-tests=error): a label must not vanish.
# CM_CTEST_WRAPPER, when set, is a command prefix for ctest (TSan's setarch).
run_ctest() {
  local dir="$1"; shift
  local log="$dir/ctest-output.log"
  local rc=0
  (cd "$dir" && ${CM_CTEST_WRAPPER:-} ctest --output-on-failure --no-tests=error \
     -j "$CM_JOBS" --timeout "${CM_TEST_TIMEOUT:-300}" "$@") 2>&1 | tee "$log" || rc=$?
  # ctest ends with "NN% tests passed, F tests failed out of T".
  local counts
  counts="$(sed -nE 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1 \2/p' "$log" | tail -n1)"
  if [[ -n "$counts" ]]; then
    local f t
    read -r f t <<<"$counts"
    passed=$((passed + t - f))
    failed=$((failed + f))
  elif ((rc != 0)); then
    failed=$((failed + 1)) # ctest itself failed before running anything
  fi
  return "$rc"
}

phase setup
cm_step "setup: Debian packages"
cm_setup

phase build
cm_step "build/: RelWithDebInfo build (benchmarks compile, not run)"
cm_configure_build "$CM_BUILD_ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCM_SANITIZE= \
  -DCM_WITH_PYTHON=ON -DCM_WITH_JAVA=ON  # Java only here, Python here and under ASan (bindings/README.md)

phase tests
cm_step "build/: ctest (all tests, packaging included)"
run_ctest "$CM_BUILD_ROOT/build"

if [[ "${CM_TEST_SKIP_ASAN:-0}" != 1 ]]; then
  phase asan-build
  cm_step "build-asan/: ASan+UBSan build"
  cm_configure_build "$CM_BUILD_ROOT/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCM_SANITIZE=address,undefined -DCM_BUILD_BENCH=OFF -DCM_WITH_PYTHON=ON
  phase asan-tests
  cm_step "build-asan/: ctest under ASan+UBSan (all but packaging)"
  run_ctest "$CM_BUILD_ROOT/build-asan" -LE packaging
else
  cm_step "build-asan/: skipped (CM_TEST_SKIP_ASAN=1)"
fi

if [[ "${CM_TEST_SKIP_TSAN:-0}" != 1 ]]; then
  phase tsan-build
  cm_step "build-tsan/: TSan build"
  cm_configure_build "$CM_BUILD_ROOT/build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCM_SANITIZE=thread -DCM_BUILD_BENCH=OFF
  phase tsan-tests
  cm_step "build-tsan/: ctest -L concurrency under TSan"
  # GCC 12's TSan cannot map its shadow memory when the kernel randomises
  # mmap with more than 28 bits ("unexpected memory mapping"): run without
  # address-space randomisation there.
  if (($(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0) > 28)); then
    CM_CTEST_WRAPPER="setarch $(uname -m) -R"
  fi
  run_ctest "$CM_BUILD_ROOT/build-tsan" -L concurrency
  CM_CTEST_WRAPPER=
else
  cm_step "build-tsan/: skipped (CM_TEST_SKIP_TSAN=1)"
fi

if [[ "${CM_TEST_SKIP_FUZZ:-0}" != 1 ]]; then
  phase fuzz-build
  cm_step "build-fuzz/: libFuzzer harnesses (clang, ASan+UBSan)"
  CC=clang CXX=clang++ cm_configure_build "$CM_BUILD_ROOT/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCM_FUZZ=ON -DCM_SANITIZE= -DCM_FUZZ_SECONDS="${CM_FUZZ_SECONDS:-20}" \
    -DCM_BUILD_BENCH=OFF -DCM_BUILD_EXAMPLES=OFF -DCM_BUILD_APPS=OFF -- cm_fuzz
  phase fuzz-tests
  cm_step "build-fuzz/: ctest -L fuzz (replay corpora and regressions, then fuzz each harness)"
  run_ctest "$CM_BUILD_ROOT/build-fuzz" -L fuzz
else
  cm_step "build-fuzz/: skipped (CM_TEST_SKIP_FUZZ=1)"
fi

phase finished
cm_step "all steps passed"
current=
