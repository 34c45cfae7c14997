# SPDX-License-Identifier: Apache-2.0
# tests/common/lingering_demo.sh: sourced by bash tests that read a demo's
# endpoint. start_lingering_demo BIN starts `BIN demo --seconds 0.3 --quiet
# --listen 127.0.0.1:0 --linger` as the coprocess DEMO, waits until the run is
# over, and sets demo_addr (host:port); stop_lingering_demo closes its stdin
# and waits (returns its exit status).
start_lingering_demo() {
  coproc DEMO { exec "$1" demo --seconds 0.3 --quiet --listen 127.0.0.1:0 --linger 2>&1; }
  demo_addr=""
  local line
  while IFS= read -r -u "${DEMO[0]}" line; do
    [[ "$line" =~ serving\ http://(127\.0\.0\.1:[0-9]+)/metrics ]] && demo_addr="${BASH_REMATCH[1]}"
    [[ "$line" == lingering* ]] && break
  done
  [[ -n "$demo_addr" ]]
}
stop_lingering_demo() {
  local pid=$DEMO_PID
  exec {DEMO[1]}>&-
  wait "$pid"
}
