#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/expect_output.sh EXPECTED -- COMMAND [ARGS...]
# Test helper: runs COMMAND and passes when it exits 0 and, for every line of
# the file EXPECTED (blank lines and lines starting with '#' aside), at least
# one line of its output (stdout and stderr) matches that extended regex.
# Used by the example and packaging tests so their output cannot silently rot.
set -euo pipefail
expected="$1"
shift
[[ "${1:-}" == "--" ]] && shift

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
rc=0
"$@" >"$out" 2>&1 || rc=$?
cat "$out"
echo "----"
if ((rc != 0)); then
  echo "expect_output: FAIL: '$*' exited with status $rc" >&2
  exit 1
fi

missing=0
checked=0
while IFS= read -r re || [[ -n "$re" ]]; do
  [[ -z "$re" || "$re" == \#* ]] && continue
  checked=$((checked + 1))
  if ! grep -Eq -- "$re" "$out"; then
    echo "expect_output: FAIL: no output line matches: $re" >&2
    missing=$((missing + 1))
  fi
done <"$expected"

if ((checked == 0)); then
  echo "expect_output: FAIL: $expected holds no expectation" >&2
  exit 1
fi
if ((missing > 0)); then
  echo "expect_output: FAIL: $missing of $checked expectations not met" >&2
  exit 1
fi
echo "expect_output: all $checked expectations met"
