#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/fuzz/make_seeds.sh BUILD_DIR: regenerates the seed corpus of
# fuzz_persist_file from real files that cm_registry_persist writes
# (make_seeds.c, built as fuzz_make_seeds in the fuzz build; README.md).
# Each file is kept as written (WAL mode, 4 KiB pages) and as a small copy
# (rollback journal, 512-byte pages) that mutations explore faster.
set -euo pipefail
build="${1:?usage: make_seeds.sh BUILD_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/persist_file/corpus"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cmake --build "$build" --target fuzz_make_seeds
"$build/tests/fuzz/fuzz_make_seeds" "$tmp"
mkdir -p "$out"
rm -f "$out"/*.db
for f in "$tmp"/*.db; do
  n="$(basename "$f" .db)"
  cp "$f" "$out/$n.wal.db"
  sqlite3 "$f" "PRAGMA journal_mode=DELETE; PRAGMA page_size=512; VACUUM;" >/dev/null
  cp "$f" "$out/$n.small.db"
done
ls -l "$out"
