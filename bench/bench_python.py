#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/bench_python.py: the Python binding side by side with its baselines,
measured in one run, interleaved (each round times every contestant once;
the figure is the best round, the least disturbed by other processes).

  series.inc()                vs prometheus_client Counter.inc()   (target: >= 3x faster)
  @cachemeter.cached hit called with keywords vs positionally      (target: <= 1.3x)
  @cachemeter.cached hit      vs functools.lru_cache, cachetools.cached(LRUCache)
                                 (same function, same keys; target: within 3x of lru_cache)
  Cache.get hit (memory://)   vs dict lookup under a threading.Lock
  the GIL: the same cm_cache_get wrapped releasing it vs keeping it

Run: PYTHONPATH=<build>/bindings/python /usr/bin/python3 bench/bench_python.py [--rounds N] [--json FILE]
(scripts/bench.sh runs it on the Release build.) Debian packages:
python3-prometheus-client, python3-cachetools.
"""
from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import platform
import sys
import threading
import timeit

import cachetools
import prometheus_client

import cachemeter
from cachemeter import _core

KEYS = 100  # distinct arguments / keys cycled through by the lookup benchmarks


def bench_counters():
    reg = cachemeter.Registry()
    prom = prometheus_client.CollectorRegistry()
    ours_family = reg.counter("requests", "Requests.", labels=("code",))
    prom_family = prometheus_client.Counter("requests", "Requests.", ["code"], registry=prom)
    ours_plain = reg.counter("events", "Events.")
    prom_plain = prometheus_client.Counter("events", "Events.", registry=prom)
    ours_hist = reg.histogram("latency_seconds", "Latency.")
    prom_hist = prometheus_client.Histogram("latency_seconds", "Latency.", registry=prom)
    return reg, {
        "series.inc() [labelled child]": ("s.inc()", {"s": ours_family.labels("200")}),
        "prometheus_client child.inc()": ("s.inc()", {"s": prom_family.labels("200")}),
        "family.inc() [no labels]": ("c.inc()", {"c": ours_plain}),
        "prometheus_client Counter.inc()": ("c.inc()", {"c": prom_plain}),
        "histogram.observe(0.01)": ("h.observe(0.01)", {"h": ours_hist}),
        "prometheus_client Histogram.observe(0.01)": ("h.observe(0.01)", {"h": prom_hist}),
        "family.labels('200').inc()": ("f.labels('200').inc()", {"f": ours_family}),
        "prometheus_client .labels('200').inc()": ("f.labels('200').inc()", {"f": prom_family}),
    }


def work(x):
    return x * 2


def record(name, n):
    return {"name": name, "n": n, "tags": ["a", "b"]}


def bench_cached(reg):
    ours = cachemeter.cached(registry=reg, name="bench.work")(work)
    lru = functools.lru_cache(maxsize=1024)(work)
    ct = cachetools.cached(cachetools.LRUCache(maxsize=1024))(work)
    ct_lock = cachetools.cached(cachetools.LRUCache(maxsize=1024), lock=threading.Lock())(work)
    # A second shape: two arguments (str, int), a small dict result. lru_cache
    # hands back the very object it stored; @cached decodes a new one per hit.
    ours2 = cachemeter.cached(registry=reg, name="bench.record")(record)
    lru2 = functools.lru_cache(maxsize=1024)(record)
    keys = list(range(KEYS))
    pairs = [(f"user-{i}", i) for i in range(KEYS)]
    for f in (ours, lru, ct, ct_lock):
        for k in keys:
            f(k)  # warm: every timed call is a hit
    for f in (ours2, lru2):
        for a, b in pairs:
            f(a, b)
    stmt = "for k in keys: f(k)"
    stmt2 = "for a, b in pairs: f(a, b)"
    stmt2_kw = "for a, b in pairs: f(name=a, n=b)"  # FastAPI calls handlers this way
    return ours, {
        "@cachemeter.cached hit": (stmt, {"f": ours, "keys": keys}),
        "functools.lru_cache hit": (stmt, {"f": lru, "keys": keys}),
        "cachetools.cached(LRUCache) hit": (stmt, {"f": ct, "keys": keys}),
        "cachetools.cached(LRUCache, lock) hit": (stmt, {"f": ct_lock, "keys": keys}),
        "@cachemeter.cached hit (str, int) -> dict": (stmt2, {"f": ours2, "pairs": pairs}),
        "@cachemeter.cached hit (name=str, n=int) -> dict": (stmt2_kw, {"f": ours2, "pairs": pairs}),
        "functools.lru_cache hit (str, int) -> dict": (stmt2, {"f": lru2, "pairs": pairs}),
    }


def bench_cache_get(reg):
    cache = cachemeter.Cache("memory://?max_entries=10000", "bench", registry=reg)
    keys = [f"key:{i}".encode() for i in range(KEYS)]
    d, lock = {}, threading.Lock()
    for k in keys:
        cache.set(k, b"v" * 64)
        d[k] = b"v" * 64

    def locked_get(k, d=d, lock=lock):
        with lock:
            return d.get(k)

    h = cache._h
    stmt = "for k in keys: get(k)"
    raw = "for k in keys: get(h, k)"
    return cache, {
        "Cache.get hit (memory://)": (stmt, {"get": cache.get, "keys": keys}),
        "Cache.get_or_load hit (memory://)": ("for k in keys: gol(k, load)",
                                              {"gol": cache.get_or_load, "load": lambda k: b"v", "keys": keys}),
        "dict.get under threading.Lock": (stmt, {"get": locked_get, "keys": keys}),
        "dict.get (no lock, not thread-safe)": (stmt, {"get": d.get, "keys": keys}),
        "_core.cache_get_gil (keeps the GIL)": (raw, {"get": _core.cache_get_gil, "h": h, "keys": keys}),
        "_core.cm_cache_get (releases the GIL)": (raw, {"get": _core.cm_cache_get, "h": h, "keys": keys}),
    }


def measure(cases, per_stmt, rounds, target_s=0.05):
    """{name: best ns per operation}; per_stmt: operations per statement run."""
    numbers = {}
    for name, (stmt, env) in cases.items():  # calibrate each to ~target_s per round
        n, t = 1, 0.0
        while t < target_s / 4:
            n *= 4
            t = timeit.timeit(stmt, number=n, globals=env)
        numbers[name] = max(1, int(n * target_s / t))
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, (stmt, env) in cases.items():
            t = timeit.timeit(stmt, number=numbers[name], globals=env)
            best[name] = min(best[name], t / (numbers[name] * per_stmt) * 1e9)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    reg, counters = bench_counters()
    ours_cached, cached = bench_cached(reg)
    cache, gets = bench_cache_get(reg)
    results = {}
    results.update(measure(counters, 1, args.rounds))
    results.update(measure(cached, KEYS, args.rounds))
    results.update(measure(gets, KEYS, args.rounds))

    ratios = [
        ("prometheus_client child.inc() / series.inc()",
         results["prometheus_client child.inc()"] / results["series.inc() [labelled child]"], ">= 3"),
        ("prometheus_client Counter.inc() / family.inc()",
         results["prometheus_client Counter.inc()"] / results["family.inc() [no labels]"], ">= 3"),
        ("prometheus_client observe / histogram.observe",
         results["prometheus_client Histogram.observe(0.01)"] / results["histogram.observe(0.01)"], ""),
        ("prometheus_client .labels().inc() / ours",
         results["prometheus_client .labels('200').inc()"] / results["family.labels('200').inc()"], ""),
        ("@cached hit / lru_cache hit",
         results["@cachemeter.cached hit"] / results["functools.lru_cache hit"], "<= 3"),
        ("@cached hit / lru_cache hit, (str, int) -> dict",
         results["@cachemeter.cached hit (str, int) -> dict"] / results["functools.lru_cache hit (str, int) -> dict"],
         ""),
        ("@cached keyword hit / positional hit",
         results["@cachemeter.cached hit (name=str, n=int) -> dict"]
         / results["@cachemeter.cached hit (str, int) -> dict"], "<= 1.3"),
        ("@cached hit / cachetools hit",
         results["@cachemeter.cached hit"] / results["cachetools.cached(LRUCache) hit"], ""),
        ("@cached hit / cachetools+lock hit",
         results["@cachemeter.cached hit"] / results["cachetools.cached(LRUCache, lock) hit"], ""),
        ("Cache.get hit / locked dict.get",
         results["Cache.get hit (memory://)"] / results["dict.get under threading.Lock"], ""),
        ("GIL released / kept (cm_cache_get)",
         results["_core.cm_cache_get (releases the GIL)"] / results["_core.cache_get_gil (keeps the GIL)"], ""),
    ]

    print(f"cachemeter {cachemeter.__version__}, Python {platform.python_version()} ({sys.executable}), "
          f"prometheus_client {importlib.metadata.version('prometheus_client')}, "
          f"cachetools {cachetools.__version__}; best of {args.rounds} interleaved rounds")
    print(f"\n{'benchmark':48s} {'ns/op':>9s}")
    for name, ns in results.items():
        print(f"{name:48s} {ns:9.1f}")
    print(f"\n{'ratio':48s} {'value':>9s}  target")
    for name, value, target in ratios:
        verdict = ""
        if target:
            op, bound = target.split()
            ok = value >= float(bound) if op == ">=" else value <= float(bound)
            verdict = f"{target}  {'met' if ok else 'MISSED'}"
        print(f"{name:48s} {value:9.2f}  {verdict}")
    m = ours_cached.metrics()
    print(f"\n@cached recorded {m['hits']} hits and {m['misses']} misses for {m['function']} meanwhile")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ns_per_op": results, "ratios": {n: v for n, v, _ in ratios}}, f, indent=2)
    cache.close()
    reg.close()


if __name__ == "__main__":
    main()
