# SPDX-License-Identifier: Apache-2.0
"""8 Python threads on shared counters, gauges, histograms and caches: the
totals are exact (the C updates are atomic per thread cell; the binding
adds no shared Python state on these paths)."""
from __future__ import annotations

import threading

import cachemeter
from conftest import BOUND, needs_sqlite

THREADS = 8
N = 20_000


def run_threads(target):
    barrier = threading.Barrier(THREADS)
    errors = []

    def body(i):
        try:
            barrier.wait(BOUND)
            target(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert not errors, errors


def test_counters_gauges_histograms_exact_totals(registry):
    c = registry.counter("ops", labels=("kind",))
    g = registry.gauge("level")
    h = registry.histogram("sizes", buckets=(1, 10))
    shared = c.labels("shared")

    def work(i):
        mine = c.labels(f"t{i}")  # each thread also creates its own series
        for _ in range(N):
            shared.inc()
            mine.inc(2)
            g.inc()
            h.observe(5)
        g.add(-N)

    run_threads(work)
    assert shared.value == THREADS * N
    assert all(c.labels(f"t{i}").value == 2 * N for i in range(THREADS))
    assert g.value == 0
    assert (h.count, h.sum) == (THREADS * N, 5 * THREADS * N)


def exact_cache_counts(cache, registry):
    def work(i):
        for j in range(N // 4):
            key = f"t{i}-{j % 100}"
            cache.set(key, f"{i}:{j}")
            assert cache.get(key) == f"{i}:{j}".encode()
            assert cache.get(f"absent-{i}") is None

    run_threads(work)
    st = cache.stats()
    assert st["hits"] == THREADS * (N // 4)
    assert st["misses"] == THREADS * (N // 4)
    assert st["entries"] == THREADS * 100


def test_memory_cache_from_8_threads(registry):
    with cachemeter.Cache("memory://", "mt", registry=registry) as cache:
        exact_cache_counts(cache, registry)


@needs_sqlite
def test_sqlite_cache_from_8_threads(registry, tmp_path):
    # fewer operations: each is a transaction in a file (GIL released)
    global N
    saved, N = N, 800
    try:
        with cachemeter.Cache(f"sqlite://{tmp_path / 'mt.db'}", "mt", registry=registry) as cache:
            exact_cache_counts(cache, registry)
    finally:
        N = saved


def test_get_or_load_from_8_threads_loads_each_key_once(registry):
    loads = []
    lock = threading.Lock()

    def load(key):
        with lock:
            loads.append(key)
        return key.encode() * 2

    with cachemeter.Cache("memory://", "gol", registry=registry) as cache:
        def work(i):
            for j in range(2000):
                k = f"k{j % 200}"
                assert cache.get_or_load(k, load) == k.encode() * 2

        run_threads(work)
    assert sorted(loads) == sorted(f"k{j}" for j in range(200))


def test_cached_function_from_8_threads_runs_once_per_key_and_counts_exactly(registry):
    """Hits keep the GIL (memory://), misses release it and wait for the one
    load: each key runs once, and every call is a hit or a miss."""
    runs = []
    lock = threading.Lock()

    @cachemeter.cached(registry=registry)
    def f(j, tag):
        with lock:
            runs.append(j)
        return {"j": j, "tag": tag}

    calls = 2000

    def work(i):
        for n in range(calls):
            j = n % 100
            assert f(j, "t") == {"j": j, "tag": "t"}

    run_threads(work)
    assert sorted(runs) == list(range(100))
    m = f.metrics()
    assert (m["hits"], m["misses"], m["errors"]) == (THREADS * calls - 100, 100, 0)
    # The cache counts a caller that waited for another's load as a miss
    # (its lookup missed); the function's metrics count it as a hit (it did
    # not run). Each call is counted once either way.
    stats = f.cache.stats()
    assert stats["hits"] + stats["misses"] == THREADS * calls
    assert stats["misses"] >= 100
