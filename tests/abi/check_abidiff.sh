#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The library against the committed ABI baseline (abi/libcachemeter.abi,
# docs/api-stability.md), with libabigail's abidiff:
#   check_abidiff.sh LIB INCLUDE_DIR BASELINE SUPPRESSIONS
# Compatible changes (added functions) pass and are printed; an incompatible
# one (a removed function, a changed parameter or return type, a changed
# public struct such as cm_sample) fails. First, a self-check: the baseline
# with one extra function the library does not have must be flagged as
# incompatible, so a broken abidiff invocation cannot pass silently.
# Regenerate the baseline after a deliberate change (with a CHANGELOG entry):
#   abidw --exported-interfaces-only --headers-dir include/cachemeter --drop-private-types \
#     --suppressions abi/opaque.suppr --no-corpus-path --no-comp-dir-path --no-show-locs \
#     --out-file abi/libcachemeter.abi build/src/libcachemeter.so.X.Y.Z
set -uo pipefail
lib=$1 incdir=$2 baseline=$3 suppr=$4
command -v abidiff >/dev/null || { echo "FAIL: abidiff missing (Debian: abigail-tools; scripts/setup.sh)" >&2; exit 1; }
diff_abi() {
  abidiff --headers-dir2 "$incdir" --drop-private-types --suppressions "$suppr" --no-show-locs "$1" "$lib"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The self-check: cm_errclear copied under a name the library lacks.
python3 - "$baseline" "$tmp/doctored.abi" <<'PY'
import sys
s = open(sys.argv[1]).read()
sym = s.index("<elf-symbol name='cm_errclear'")
line = s[sym:s.index("\n", sym)]
s = s.replace(line, line + "\n    " + line.replace("cm_errclear", "cm_abi_selfcheck_removed"), 1)
i = s.index("<function-decl name='cm_errclear'")
j = s.index("</function-decl>", i) + len("</function-decl>")
s = s[:j] + "\n      " + s[i:j].replace("cm_errclear", "cm_abi_selfcheck_removed") + s[j:]
open(sys.argv[2], "w").write(s)
PY
diff_abi "$tmp/doctored.abi" >"$tmp/self.txt" 2>&1
rc=$?
if (( (rc & 8) == 0 )) || ! grep -q cm_abi_selfcheck_removed "$tmp/self.txt"; then
  echo "FAIL: the self-check's removed function was not flagged (abidiff exit $rc):" >&2
  cat "$tmp/self.txt" >&2
  exit 1
fi

diff_abi "$baseline" >"$tmp/report.txt" 2>&1
rc=$?
cat "$tmp/report.txt"
if (( rc & 3 )); then echo "FAIL: abidiff could not compare (exit $rc)" >&2; exit 1; fi
if (( rc & 8 )); then
  echo "FAIL: incompatible ABI change against $baseline (see above; docs/api-stability.md)" >&2
  exit 1
fi
echo "ok: ABI compatible with the baseline (abidiff exit $rc$( (( rc & 4 )) && echo ': compatible additions' ))"
