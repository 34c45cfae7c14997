#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/bench_statsd.py: the cost per cache operation of getting its metrics
to StatsD from Python, cachemeter vs Debian's python3-statsd, in one run,
interleaved (each round times every contestant once; the figure is the best
round, the least disturbed by other processes).

  cachemeter: Cache.get hit on a memory:// cache whose registry runs a StatsD
              exporter (every operation counted in-process, pushed once a
              second as one line per series)
  statsd:     the same Cache.get hit with metrics=off, plus
              statsd.StatsClient.incr() per operation (one UDP datagram each)
  plain get:  Cache.get hit with metrics=off and nothing sent (the floor)

Both send to a UDP socket this script binds on 127.0.0.1 and drains.
Run: PYTHONPATH=<build>/bindings/python /usr/bin/python3 bench/bench_statsd.py [--rounds N]
Debian package: python3-statsd.
"""
from __future__ import annotations

import argparse
import socket
import timeit

import statsd

import cachemeter

N = 200_000
KEYS = [f"key:{i:06d}" for i in range(1024)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    port = rx.getsockname()[1]

    def drain() -> int:
        n = 0
        while True:
            try:
                rx.recv(65536)
                n += 1
            except BlockingIOError:
                return n

    reg = cachemeter.Registry()
    ours = cachemeter.Cache("memory://?max_entries=10000", "users", registry=reg)
    exp = reg.export(f"statsd://127.0.0.1:{port}?prefix=myapp", interval=1.0)
    off = cachemeter.Cache("memory://?max_entries=10000&metrics=off", "users_off", registry=reg)
    client = statsd.StatsClient("127.0.0.1", port, prefix="myapp")
    for k in KEYS:
        ours.set(k, b"v" * 100)
        off.set(k, b"v" * 100)

    def run_ours() -> None:
        get = ours.get
        for i in range(N):
            get(KEYS[i & 1023])

    def run_statsd() -> None:
        get, incr = off.get, client.incr
        for i in range(N):
            get(KEYS[i & 1023])
            incr("cache.hits")

    def run_plain() -> None:
        get = off.get
        for i in range(N):
            get(KEYS[i & 1023])

    best = {"cachemeter": float("inf"), "python-statsd": float("inf"), "plain get": float("inf")}
    datagrams = {"cachemeter": 0, "python-statsd": 0}
    for _ in range(args.rounds):
        for name, fn in (("cachemeter", run_ours), ("python-statsd", run_statsd), ("plain get", run_plain)):
            drain()
            t = timeit.timeit(fn, number=1)
            if name == "cachemeter":
                exp.flush()
            got = drain()
            if name in datagrams:
                datagrams[name] = max(datagrams[name], got)
            best[name] = min(best[name], t)
    exp.stop()
    ns = {k: v / N * 1e9 for k, v in best.items()}
    print(f"per cache get hit, best of {args.rounds} rounds of {N}:")
    for k, v in ns.items():
        print(f"  {k:14s} {v:8.1f} ns/op   export cost over the plain get: {v - ns['plain get']:+7.1f} ns/op")
    print(f"datagrams per round: cachemeter {datagrams['cachemeter']} (one flush), "
          f"python-statsd {datagrams['python-statsd']} (one per operation; loopback drops some under load)")
    print(f"python-statsd / cachemeter: {ns['python-statsd'] / ns['cachemeter']:.2f}x")


if __name__ == "__main__":
    main()
