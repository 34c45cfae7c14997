#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's C tour is one program (issue 18: "nothing in the README is
# untested"): its ```c blocks of the "## API tour" section, in order, are
# compiled with strict warnings against the public headers, linked to the
# built library and run in a scratch directory; it must exit 0 and print what
# the tour says it prints.
#   readme_tour.sh README CC INCLUDE_DIR LIBRARY
set -euo pipefail
readme=$1 cc=$2 incdir=$3 lib=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
awk '/^## API tour$/ {on=1; next} on && /^## / {exit} on && /^```c$/ {code=1; next}
     code && /^```$/ {code=0; next} code {print}' "$readme" > "$dir/tour.c"
[[ -s "$dir/tour.c" ]] || { echo "FAIL: no C blocks in the API tour" >&2; exit 1; }
"$cc" -std=c11 -Wall -Wextra -Werror -I"$incdir" -o "$dir/tour" "$dir/tour.c" "$lib" -Wl,-rpath,"$(dirname "$lib")"
out=$(cd "$dir" && ./tour)
echo "$out"
grep -q '^http_requests_total{service="api",path="/users",code="200"} 1$' <<<"$out" || { echo "FAIL: no counter" >&2; exit 1; }
grep -q '^admin$' <<<"$out" || { echo "FAIL: no cached value" >&2; exit 1; }
grep -q '^user:bob$' <<<"$out" || { echo "FAIL: the loader's value" >&2; exit 1; }
grep -q '^serving on port [0-9]' <<<"$out" || { echo "FAIL: no endpoint" >&2; exit 1; }
[[ -f "$dir/metrics.db" ]] || { echo "FAIL: no persisted file" >&2; exit 1; }
echo "ok: the README's C tour compiles and runs"
