#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/setup.sh: installs the Debian 12 packages the build and the tests need,
# then the one npm package the tests use (Etsy's statsd daemon, pinned, into a
# local folder: never at build time).
# A fast no-op when they are all present (one dpkg-query call); otherwise, as
# root, one `apt-get update` and one `apt-get install`; not as root, it lists
# what is missing and fails.
set -euo pipefail

# Etsy's StatsD daemon for tests/python/test_statsd.py: the version and where
# it goes (the test reads CM_STATSD_DIR, with the same default).
STATSD_VERSION=0.9.0
CM_STATSD_DIR="${CM_STATSD_DIR:-/opt/cachemeter-tools/statsd-$STATSD_VERSION}"

install_statsd() {
  if [[ -f "$CM_STATSD_DIR/node_modules/statsd/stats.js" ]]; then
    echo "setup: statsd $STATSD_VERSION is in $CM_STATSD_DIR"
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: npm is missing (node and npm come with the machine; Debian: nodejs npm)" >&2
    return 1
  fi
  echo "setup: installing statsd@$STATSD_VERSION into $CM_STATSD_DIR (npm registry)"
  mkdir -p "$CM_STATSD_DIR"
  npm install --prefix "$CM_STATSD_DIR" "statsd@$STATSD_VERSION" --omit=optional --no-audit --no-fund \
    --loglevel=error
}

packages=(
  build-essential cmake ninja-build pkg-config   # compilers (with the ASan/UBSan/TSan runtimes), build tools
  binutils abigail-tools                         # nm, readelf, abidiff: the ABI tests
  libcmocka-dev libgtest-dev                     # C and C++ unit tests
  libbenchmark-dev prometheus-cpp-dev            # benchmarks and their baseline
  libmicrohttpd-dev zlib1g-dev                   # the HTTP endpoint (gzip via zlib)
  libsqlite3-dev sqlite3                         # the sqlite:// backend and metrics persistence; the shell for tests
  libhiredis-dev redis-server                    # the redis:// backend; the real server its tests start
  redis-sentinel redis-tools                     # redis+sentinel:// and redis+cluster:// tests (sentinels, redis-cli --cluster)
  libcurl4-openssl-dev prometheus-pushgateway    # the Pushgateway exporter (libcurl); the real gateway its tests start
  prometheus                                     # promtool, and the real Prometheus the HTTP tests start
  openssl python3-bcrypt                         # self-signed certificates for the TLS tests; a TLS Pushgateway's password hash
  wrk curl                                       # the HTTP benchmark
  python3 python3-dev python3-pytest python3-prometheus-client  # exposition parsers
  swig python3-cachetools python3-statsd         # the Python binding; cachetools, statsd: benchmark baselines
  gunicorn                                       # the pre-fork pool of the shared-registry test
  python3-fastapi python3-uvicorn                # the ASGI app's test (FastAPI under uvicorn)
  python3-venv python3-pip python3-setuptools python3-wheel python3-build  # pip install . in a venv, offline
  chromium                                       # the endpoint's dashboard page, tested headless
  openjdk-17-jdk-headless                        # the Java binding: javac, jar, java, jni.h
  clang libfuzzer-14-dev                         # the fuzz phase: clang 14 and libFuzzer (tests/fuzz)
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup: not a Debian system; install the equivalents of: ${packages[*]}" >&2
  exit 0
fi

# Packages never installed are absent from dpkg-query's output (it then exits
# 1), so "missing" is whatever it does not report as installed.
installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null |
  awk '$2 == "installed" { print $1 }' || true)"
missing=()
for p in "${packages[@]}"; do
  grep -qxF -- "$p" <<<"$installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} required packages are installed"
  install_statsd
  exit 0
fi

if ((EUID != 0)); then
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run this script as root, or: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
install_statsd
