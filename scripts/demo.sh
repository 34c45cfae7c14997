#!/usr/bin/env bash
# scripts/demo.sh: THE main job of the README. Installs what is missing, builds
# the example program in build/ and runs it: a registry updated from four
# threads, printed as Prometheus text, OpenMetrics and JSON.
# Knobs: CM_BUILD_ROOT, CM_JOBS (see scripts/lib.sh).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cm_step "setup: Debian packages"
cm_setup
cm_step "build/: building examples/metrics_demo"
cm_configure_build "$CM_BUILD_ROOT/build" -- metrics_demo
cm_step "running examples/metrics_demo"
"$CM_BUILD_ROOT/build/examples/metrics_demo"
