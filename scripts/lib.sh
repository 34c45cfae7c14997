# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# scripts/lib.sh: what test.sh, demo.sh and bench.sh share (sourced, not run).
# Knobs read here (all optional):
#   CM_BUILD_ROOT  where build/, build-asan/, build-tsan/, build-release/ go
#                  (default: the repository root)
#   CM_JOBS        parallel compile and test jobs (default 2: the CI machine
#                  has 2 cores)

CM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CM_BUILD_ROOT="${CM_BUILD_ROOT:-$CM_ROOT}"
CM_JOBS="${CM_JOBS:-2}"

# A visible header per step, with the time elapsed since the script started.
cm_step() {
  printf '\n==== %s  [t=%ss]\n' "$*" "$SECONDS"
}

# Installs missing Debian packages (no-op when everything is there).
cm_setup() {
  bash "$CM_ROOT/scripts/setup.sh"
}

# cm_configure_build DIR [cmake -D args...] [-- build targets...]
# Configures DIR with Ninja (once; later calls only update the cache) and
# builds the given targets, or everything.
cm_configure_build() {
  local dir="$1"; shift
  local -a defs=() targets=()
  while (($#)); do
    if [[ "$1" == "--" ]]; then shift; targets=("$@"); break; fi
    defs+=("$1"); shift
  done
  cmake -S "$CM_ROOT" -B "$dir" -G Ninja "${defs[@]}"
  local -a tflags=()
  local t
  for t in "${targets[@]}"; do tflags+=(--target "$t"); done
  cmake --build "$dir" -j "$CM_JOBS" "${tflags[@]}"
}
