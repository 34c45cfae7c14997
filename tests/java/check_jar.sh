#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The jar alone, as a user gets it (issue 17, item 7): copied into an empty
# directory outside the build, `java -cp cachemeter.jar CacheExample.java` runs with
# no flags and no LD_LIBRARY_PATH (the jar carries the native libraries and
# extracts them to a private temporary directory, removed at exit).
# The program is examples/java/CacheExample.java, as a user runs it.
# Also: bindings/java/pom.xml names the project's one version.
#   check_jar.sh JAVA CACHEMETER_JAR POM VERSION EXAMPLE
set -euo pipefail
java=$1 jar=$2 pom=$3 version=$4 example=$5
grep -q "<version>$version</version>" "$pom" || { echo "FAIL: $pom does not say version $version" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$jar" "$dir/cachemeter.jar"
cp "$example" "$dir/CacheExample.java"
tmp="$dir/tmp"
mkdir "$tmp"
out=$(cd "$dir" && env -i PATH=/usr/bin:/bin HOME="$dir" "$java" -Djava.io.tmpdir="$tmp" -cp cachemeter.jar CacheExample.java)
echo "$out"
grep -qx 'get=admin' <<<"$out" || { echo "FAIL: no get=admin" >&2; exit 1; }
grep -qx 'jobs_total{queue="mail"} 3' <<<"$out" || { echo "FAIL: no jobs_total sample" >&2; exit 1; }
grep -qx 'cachemeter_cache_hits_total{cache="users",backend="memory"} 1' <<<"$out" || { echo "FAIL: no hit" >&2; exit 1; }
grep -qx 'loaded=loaded:bob' <<<"$out" || { echo "FAIL: no loaded value" >&2; exit 1; }
grep -qx 'refused: -1' <<<"$out" || { echo "FAIL: the bad URI was not refused with CM_EINVAL" >&2; exit 1; }
# The extracted libraries are gone once the JVM exited.
if [[ -n "$(ls -A "$tmp")" ]]; then echo "FAIL: left in java.io.tmpdir: $(ls -A "$tmp")" >&2; exit 1; fi
# On a platform the jar carries nothing for, the error says what to do.
err=$(cd "$dir" && env -i PATH=/usr/bin:/bin HOME="$dir" "$java" -Dos.arch=riscv64 -Djava.io.tmpdir="$tmp" \
  -cp cachemeter.jar CacheExample.java 2>&1) && { echo "FAIL: ran without a library for riscv64" >&2; exit 1; }
grep -q 'UnsatisfiedLinkError: cachemeter: cannot load its native library' <<<"$err" &&
  grep -q 'has none for this platform' <<<"$err" && grep -q -- '-Dcachemeter.jni=' <<<"$err" ||
  { echo "FAIL: unhelpful error: $err" >&2; exit 1; }
echo "ok: the jar ran from $dir with no flags, and says what to do where it cannot"
