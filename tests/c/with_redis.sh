#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/c/with_redis.sh PROGRAM [ARGS...]: runs PROGRAM against a private
# redis-server and passes its exit status through. The server listens on
# 127.0.0.1 on a free port (and on a unix socket in its temporary directory),
# keeps nothing on disk (--save "" --appendonly no), and is stopped whatever
# happens (trap). PROGRAM sees CM_TEST_REDIS_PORT and CM_TEST_REDIS_SOCKET.
#   REDIS_SERVER=path        the server binary (default /usr/bin/redis-server)
#   CM_TEST_REDIS_TIMEOUT=s  PROGRAM is killed after this many seconds
#                            (default 100: under ctest's TIMEOUT 120, so the
#                            wrapper, not ctest, ends a hung run and still
#                            stops the server)
set -euo pipefail

if (($# == 0)); then
  echo "usage: $0 PROGRAM [ARGS...]" >&2
  exit 2
fi
server="${REDIS_SERVER:-/usr/bin/redis-server}"
if [[ ! -x "$server" ]]; then
  echo "with_redis.sh: $server is not installed (apt-get install redis-server)" >&2
  exit 1
fi

dir="$(mktemp -d /tmp/cm-with-redis-XXXXXX)"
pid=""
# shellcheck disable=SC2317 # called through the EXIT trap
stop() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # Up to 5 s for a clean exit, then SIGKILL.
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free port: bind port 0 and release it. Another process could take it
# before redis-server binds; the server then fails to start and the next port
# is tried.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Answers PING: the server is up (each try bounded to 2 s).
ping() {
  [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

sock="$dir/redis.sock"
started=0
for attempt in 1 2 3 4 5; do
  port="$(free_port)"
  log="$dir/redis-$attempt.log"
  "$server" --port "$port" --bind 127.0.0.1 --unixsocket "$sock" --unixsocketperm 700 \
    --save "" --appendonly no --dir "$dir" --daemonize no \
    --loglevel warning --logfile "$log" &
  pid=$!
  # Poll for up to 20 s (slow CI, sanitizer runs in parallel); stop early if
  # the server died (port taken meanwhile, bad option).
  for _ in $(seq 200); do
    if ping "$port"; then
      started=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  ((started)) && break
  echo "with_redis.sh: redis-server on port $port did not start (attempt $attempt):" >&2
  cat "$log" >&2 || true
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
done
if ((!started)); then
  echo "with_redis.sh: giving up: redis-server did not start" >&2
  exit 1
fi

export CM_TEST_REDIS_PORT="$port"
export CM_TEST_REDIS_SOCKET="$sock"
set +e
timeout -k 5 "${CM_TEST_REDIS_TIMEOUT:-100}" "$@"
rc=$?
set -e
if ((rc == 124)); then
  echo "with_redis.sh: $1 killed after ${CM_TEST_REDIS_TIMEOUT:-100} s" >&2
fi
if ! kill -0 "$pid" 2>/dev/null; then
  echo "with_redis.sh: note: redis-server (pid $pid) was no longer running at the end" >&2
fi
exit "$rc"
