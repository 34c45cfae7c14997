#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/demo.sh: THE main job of the README. Installs what is missing, builds
# the `cachemeter` program in build/ and runs `cachemeter demo`: named caches
# under a Zipf workload from several threads, a live progress line, and a
# summary per cache. Arguments are passed to `cachemeter demo` (try --help).
# Knobs: CM_BUILD_ROOT, CM_JOBS (see scripts/lib.sh).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cm_step "setup: Debian packages"
cm_setup
cm_step "build/: building the cachemeter program"
cm_configure_build "$CM_BUILD_ROOT/build" -- cachemeter_cli
cm_step "running: cachemeter demo $*"
"$CM_BUILD_ROOT/build/apps/cachemeter" demo "$@"
