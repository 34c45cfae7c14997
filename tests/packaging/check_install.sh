#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/packaging/check_install.sh MODE BUILD_DIR WORK_DIR
# Installs cachemeter into a scratch tree, checks the tree, then builds
# consumer/consumer.c against it both ways a user would (pkg-config and
# find_package) and runs both programs.
#   MODE prefix      `cmake --install BUILD_DIR --prefix WORK_DIR/prefix`: the
#                    tree must honour a prefix chosen at install time.
#   MODE abs-libdir  configures and builds the library again in WORK_DIR with
#                    an absolute CMAKE_INSTALL_LIBDIR outside the prefix.
# The environment (set by CMakeLists.txt) gives CM_SOURCE_DIR, CM_VERSION,
# CM_SOVERSION, CM_LIBDIR, CM_INCLUDEDIR (the build's GNUInstallDirs values),
# CM_GENERATOR, CC and CXX. Exit 77 means skipped.
set -euo pipefail
mode="$1"
build="$2"
work="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
expect_output="$CM_SOURCE_DIR/scripts/expect_output.sh"
unset DESTDIR # would silently move the whole install elsewhere

fail() {
  echo "check_install: FAIL: $*" >&2
  exit 1
}
step() { printf '\n--- %s\n' "$*"; }

rm -rf "$work"
mkdir -p "$work"
work="$(cd "$work" && pwd -P)" # canonical, to compare with pkg-config's answers
prefix="$work/prefix"

case "$mode" in
  prefix)
    if [[ "$CM_LIBDIR" == /* ]]; then
      echo "check_install: CMAKE_INSTALL_LIBDIR is absolute ($CM_LIBDIR): --prefix cannot move it; skipped"
      exit 77
    fi
    libdir="$prefix/$CM_LIBDIR"
    step "cmake --install $build --prefix $prefix"
    cmake --install "$build" --prefix "$prefix"
    ;;
  abs-libdir)
    # The library lands outside the prefix: nothing may assume libdir is
    # prefix/something.
    libdir="$work/elsewhere/lib"
    step "configure and build with CMAKE_INSTALL_LIBDIR=$libdir"
    cmake -S "$CM_SOURCE_DIR" -B "$work/build" -G "$CM_GENERATOR" \
      -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR="$libdir" \
      -DBUILD_TESTING=OFF -DCM_BUILD_BENCH=OFF -DCM_BUILD_EXAMPLES=OFF -DCM_BUILD_APPS=OFF
    cmake --build "$work/build" --target cachemeter -j "${CM_JOBS:-2}"
    step "cmake --install $work/build"
    cmake --install "$work/build"
    ;;
  *) fail "unknown mode '$mode'" ;;
esac

# ---- the installed tree
step "checking the installed tree"
includedir="$prefix/${CM_INCLUDEDIR:-include}"
for h in cachemeter.h common.h metrics.h cache.h server.h; do
  [[ -f "$includedir/cachemeter/$h" ]] || fail "missing header $includedir/cachemeter/$h"
done
# The SONAME chain: the development link, the SONAME link, the real file.
lib="$libdir/libcachemeter.so"
[[ -L "$lib" ]] || fail "$lib is not a symlink"
[[ "$(readlink "$lib")" == "libcachemeter.so.$CM_SOVERSION" ]] ||
  fail "$lib -> $(readlink "$lib"), expected libcachemeter.so.$CM_SOVERSION"
[[ -L "$lib.$CM_SOVERSION" ]] || fail "$lib.$CM_SOVERSION is not a symlink"
[[ "$(readlink "$lib.$CM_SOVERSION")" == "libcachemeter.so.$CM_VERSION" ]] ||
  fail "$lib.$CM_SOVERSION -> $(readlink "$lib.$CM_SOVERSION"), expected libcachemeter.so.$CM_VERSION"
[[ -f "$lib.$CM_VERSION" && ! -L "$lib.$CM_VERSION" ]] || fail "$lib.$CM_VERSION is not a regular file"
soname="$(readelf -d "$lib.$CM_VERSION" | sed -nE 's/.*\(SONAME\).*\[(.*)\].*/\1/p')"
[[ "$soname" == "libcachemeter.so.$CM_SOVERSION" ]] ||
  fail "SONAME is '$soname', expected libcachemeter.so.$CM_SOVERSION"
for f in pkgconfig/cachemeter.pc cmake/cachemeter/cachemeterConfig.cmake \
  cmake/cachemeter/cachemeterConfigVersion.cmake cmake/cachemeter/cachemeterTargets.cmake; do
  [[ -f "$libdir/$f" ]] || fail "missing $libdir/$f"
done
# The command-line program (built in the main build only).
if [[ "$mode" == prefix ]]; then
  [[ -x "$prefix/bin/cachemeter" ]] || fail "missing $prefix/bin/cachemeter"
  # It starts from this non-system prefix with no environment at all (its
  # RUNPATH is $ORIGIN-relative), and finds the installed library.
  runpath="$(readelf -d "$prefix/bin/cachemeter" | sed -nE 's/.*\((RUNPATH|RPATH)\).*\[(.*)\].*/\2/p')"
  [[ "$runpath" == '$ORIGIN/'* ]] || fail "bin/cachemeter's RUNPATH is '$runpath', not \$ORIGIN-relative"
  version="$(env -i "$prefix/bin/cachemeter" --version)" || fail "the installed cachemeter does not start"
  [[ "$version" == "cachemeter $CM_VERSION" ]] || fail "cachemeter --version says '$version'"
  [[ "$(env -i "$prefix/bin/cachemeter" version)" == "cachemeter $CM_VERSION" ]] || fail "cachemeter version"
fi
# The internals archive is for our tests only.
if find "$work" -name 'libcachemeter_static*' -print -quit | grep -q .; then
  fail "the internal static library was installed"
fi
echo "tree OK: headers, $lib -> .so.$CM_SOVERSION -> .so.$CM_VERSION, SONAME, .pc, CMake package"

# loaded_from PROGRAM: the libcachemeter.so.N the dynamic loader picks.
loaded_from() {
  ldd "$1" | sed -nE "s/^[[:space:]]*libcachemeter\.so\.$CM_SOVERSION => ([^ ]+) .*/\1/p"
}
# check_consumer PROGRAM: links the SONAME, loads our installed copy, and
# prints what it should.
check_consumer() {
  readelf -d "$1" | grep -qF "[libcachemeter.so.$CM_SOVERSION]" ||
    fail "$1 does not need libcachemeter.so.$CM_SOVERSION"
  local from
  from="$(loaded_from "$1")"
  [[ "$from" == "$libdir/libcachemeter.so.$CM_SOVERSION" ]] ||
    fail "$1 loads libcachemeter from '$from', not from $libdir"
  bash "$expect_output" "$here/consumer.expected" -- "$1"
}

# ---- consumer 1: pkg-config. Only our .pc is visible (PKG_CONFIG_LIBDIR), so a
# cachemeter installed elsewhere on the machine cannot stand in for it.
step "consumer built with pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_LIBDIR="$libdir/pkgconfig"
[[ "$(pkg-config --modversion cachemeter)" == "$CM_VERSION" ]] ||
  fail "pkg-config --modversion says $(pkg-config --modversion cachemeter), expected $CM_VERSION"
pc_includedir="$(pkg-config --variable=includedir cachemeter)"
pc_libdir="$(pkg-config --variable=libdir cachemeter)"
[[ "$pc_includedir" == "$includedir" ]] ||
  fail "cachemeter.pc: includedir=$pc_includedir, expected $includedir ($(grep -E '^(prefix|includedir)=' "$libdir/pkgconfig/cachemeter.pc" | tr '\n' ' '))"
[[ "$pc_libdir" == "$libdir" ]] ||
  fail "cachemeter.pc: libdir=$pc_libdir, expected $libdir ($(grep -E '^(prefix|exec_prefix|libdir)=' "$libdir/pkgconfig/cachemeter.pc" | tr '\n' ' '))"
flags="$(pkg-config --cflags --libs cachemeter)"
echo "pkg-config --cflags --libs cachemeter: $flags"
# shellcheck disable=SC2086 # the flags are a list
"$CC" -std=c11 -Wall -Wextra -Werror -o "$work/consumer-pkgconfig" \
  "$here/consumer/consumer.c" $flags
LD_LIBRARY_PATH="$libdir" check_consumer "$work/consumer-pkgconfig"
# The same with the library directory as its RUNPATH (README, "Finding the
# library"): it runs with no LD_LIBRARY_PATH.
# shellcheck disable=SC2086 # the flags are a list
"$CC" -std=c11 -Wall -Wextra -Werror -o "$work/consumer-pkgconfig-rpath" \
  "$here/consumer/consumer.c" $flags -Wl,-rpath,"$(pkg-config --variable=libdir cachemeter)"
(unset LD_LIBRARY_PATH; check_consumer "$work/consumer-pkgconfig-rpath")

# ---- consumer 2: find_package(cachemeter CONFIG) and cachemeter::cachemeter.
# CMake puts the imported library's directory in the build-tree RPATH, so the
# program runs without LD_LIBRARY_PATH.
step "consumer built with find_package(cachemeter CONFIG)"
if [[ "$mode" == prefix ]]; then
  find_args=(-DCMAKE_PREFIX_PATH="$prefix")
else
  find_args=(-Dcachemeter_DIR="$libdir/cmake/cachemeter")
fi
cmake -S "$here/consumer" -B "$work/consumer-cmake" -G "$CM_GENERATOR" \
  -DCMAKE_C_COMPILER="$CC" -DCM_EXPECTED_VERSION="$CM_VERSION" "${find_args[@]}"
found_dir="$(sed -nE 's/^cachemeter_DIR:[A-Z]+=//p' "$work/consumer-cmake/CMakeCache.txt")"
[[ "$found_dir" == "$libdir/cmake/cachemeter" ]] ||
  fail "find_package used $found_dir, not $libdir/cmake/cachemeter"
cmake --build "$work/consumer-cmake"
(unset LD_LIBRARY_PATH; check_consumer "$work/consumer-cmake/consumer")

echo
echo "check_install: $mode: all checks passed"
