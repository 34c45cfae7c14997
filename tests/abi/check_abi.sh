#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ABI checks of the shared library, one per CTest test:
#   check_abi.sh only_cm_symbols       LIB INCLUDE_DIR SONAME
#   check_abi.sh soname                LIB INCLUDE_DIR SONAME
#   check_abi.sh headers_match_exports LIB INCLUDE_DIR SONAME
#   check_abi.sh tls_small             LIB INCLUDE_DIR SONAME
# LIB is the built libcachemeter.so, INCLUDE_DIR holds the public headers
# (include/cachemeter), SONAME the expected DT_SONAME. NM and READELF may
# name the binutils to use.
set -euo pipefail

check=$1 lib=$2 incdir=$3 want_soname=$4
NM=${NM:-nm}
READELF=${READELF:-readelf}

# Symbols the linker itself defines in every shared object: the only
# exported names allowed besides cm_*.
linker_symbols='^(_init|_fini|_edata|_end|__bss_start)$'

fail() { echo "FAIL: $*" >&2; exit 1; }

[ -f "$lib" ] || fail "no library at $lib"

# Defined dynamic symbols, one name per line ("ADDR TYPE NAME"; symbol
# versions, if any, stripped).
exported() {
  "$NM" -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u
}

# Names declared with CM_EXTERN in the public headers: comments and
# preprocessor lines (with their continuations) removed, declarations split
# at ';' '{' '}', and the identifier before the first '(' of each one that
# carries CM_EXTERN.
declared() {
  awk '
    {
      line = $0; out = ""
      while (line != "") {
        if (incomment) {
          i = index(line, "*/")
          if (i == 0) { line = ""; break }
          line = substr(line, i + 2); incomment = 0
        } else {
          i = index(line, "/*"); j = index(line, "//")
          if (j > 0 && (i == 0 || j < i)) { out = out substr(line, 1, j - 1); line = "" }
          else if (i == 0) { out = out line; line = "" }
          else { out = out substr(line, 1, i - 1) " "; line = substr(line, i + 2); incomment = 1 }
        }
      }
      if (continued) { continued = (out ~ /\\[ \t]*$/); next }
      if (out ~ /^[ \t]*#/) { continued = (out ~ /\\[ \t]*$/); next }
      printf "%s ", out
    }' "$incdir"/*.h |
    tr ';{}' '\n\n\n' |
    awk '/(^|[^A-Za-z0-9_])CM_EXTERN([^A-Za-z0-9_]|$)/ {
           if (match($0, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
             name = substr($0, RSTART, RLENGTH); sub(/[ \t]*\($/, "", name); print name
           } else { print "UNPARSED: " $0 }
         }' |
    sort -u
}

case $check in
  only_cm_symbols)
    syms=$(exported)
    [ -n "$syms" ] || fail "no dynamic symbols found in $lib"
    bad=$(grep -Ev '^cm_' <<<"$syms" | grep -Ev "$linker_symbols" || true)
    [ -z "$bad" ] || fail "exported symbols outside the cm_ namespace:"$'\n'"$bad"
    echo "OK: $(grep -c '^cm_' <<<"$syms") cm_* symbols, nothing else exported"
    ;;
  soname)
    soname=$("$READELF" -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
    [ "$soname" = "$want_soname" ] || fail "SONAME is '${soname}', expected '$want_soname'"
    echo "OK: SONAME $soname"
    ;;
  headers_match_exports)
    decl=$(declared)
    grep -q '^UNPARSED: ' <<<"$decl" && fail "cannot find the name in:"$'\n'"$(grep '^UNPARSED: ' <<<"$decl")"
    # Guard against a parser that silently finds nothing.
    grep -qx cm_version <<<"$decl" || fail "parser did not find cm_version in $incdir/*.h"
    all=$(exported)  # a failing nm stops the script here (set -e)
    syms=$(grep -Ev "$linker_symbols" <<<"$all" || true)
    missing=$(comm -23 <(echo "$decl") <(echo "$syms"))
    extra=$(comm -13 <(echo "$decl") <(echo "$syms"))
    [ -z "$missing" ] || echo "declared with CM_EXTERN but not exported:"$'\n'"$missing" >&2
    [ -z "$extra" ] || echo "exported but not declared with CM_EXTERN in a public header:"$'\n'"$extra" >&2
    [ -z "$missing$extra" ] || fail "headers and exports differ"
    echo "OK: $(wc -l <<<"$decl") functions declared and exported"
    ;;
  tls_small)
    # The library's thread-local block (initial-exec TLS, for the hot
    # paths) comes out of glibc's small static-TLS reserve when the library
    # is dlopen()ed (Python, ctypes, any FFI): a few KiB would make the load
    # fail with "cannot allocate memory in static TLS block".
    size=$("$READELF" -lW "$lib" | awk '$1 == "TLS" { print $6 }')
    [ -n "$size" ] || { echo "OK: no TLS segment"; exit 0; }
    bytes=$((size))
    ((bytes <= 512)) || fail "TLS segment is $bytes bytes (at most 512: keep big thread_locals out of the library)"
    echo "OK: TLS segment of $bytes bytes"
    ;;
  *)
    fail "unknown check '$check'"
    ;;
esac
