"""The @cached decorator: hits and misses, per-function metrics, methods,
unhashable and unpicklable arguments, key= and serializer=, ttl,
cache_clear, single flight across threads, exceptions."""
from __future__ import annotations

import json
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

import cachemeter
from conftest import BOUND, needs_sqlite, poll


class Point:
    """Picklable, not marshallable: keys go through pickle."""

    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return isinstance(other, Point) and other.x == self.x


def calls_metric(registry, function, result, prefix="cachemeter_"):
    for fam in text_string_to_metric_families(registry.render()):
        for s in fam.samples:
            if (s.name == prefix + "cached_calls_total" and s.labels.get("function") == function
                    and s.labels.get("result") == result):
                return s.value
    return None


def test_hits_misses_and_metrics(registry):
    ran = []

    @cachemeter.cached(registry=registry)
    def square(x):
        ran.append(x)
        return x * x

    assert [square(3), square(3), square(4), square(3)] == [9, 9, 16, 9]
    assert ran == [3, 4]
    name = f"{__name__}.test_hits_misses_and_metrics.<locals>.square"
    assert square.metrics() == {"function": name, "hits": 2, "misses": 2, "errors": 0, "hit_ratio": 0.5,
                                "cache": name}
    assert calls_metric(registry, name, "hit") == 2.0
    assert calls_metric(registry, name, "miss") == 2.0
    assert square.__name__ == "square" and square.__wrapped__(5) == 25
    # its own memory cache, named after the function, with the cache metrics
    assert square.cache.name == name and square.cache.registry is registry
    assert square.cache.stats()["hits"] == 2


def test_argument_kinds_and_unhashable_args(registry):
    ran = []

    @cachemeter.cached(registry=registry)
    def f(*args, **kwargs):
        ran.append((args, kwargs))
        return [args, kwargs]

    cases = [((1,), {}), ((1.0,), {}), ((True,), {}), (("1",), {}), ((b"1",), {}), (([1, 2],), {}),
             (({"a": [1]},), {}), (({1, 2},), {}), ((None,), {}), ((), {"a": 1}), (((), {"a": 1}), {}),
             ((Point(1),), {}), ((Point(2),), {})]
    first = [f(*args, **kwargs) for args, kwargs in cases]
    assert len(ran) == len(cases)  # all distinct keys: 1, 1.0 and True too
    again = [f(*args, **kwargs) for args, kwargs in cases]
    assert len(ran) == len(cases)  # and all hits the second time
    assert f.metrics()["hits"] == len(cases)
    assert [r[1] for r in again] == [r[1] for r in first]
    assert f([1, 2]) == [([1, 2],), {}]  # a copy through pickle


def test_unpicklable_argument_needs_key(registry):
    @cachemeter.cached(registry=registry)
    def f(x):
        return 1

    with pytest.raises(TypeError, match="pass key="):
        f(lambda: 0)
    lock = threading.Lock()

    @cachemeter.cached(registry=registry, key=lambda lk, n: f"n={n}")
    def g(lk, n):
        return n + 1

    assert g(lock, 1) == 2 and g(threading.Lock(), 1) == 2
    assert g.metrics()["hits"] == 1


class Pricing:
    """A module-level class: pickle finds it, so ``self`` can be part of keys."""

    def __init__(self, rate):
        self.rate = rate
        self.ran = 0

    @cachemeter.cached(name="test_cached.Pricing.price")
    def price(self, qty):
        self.ran += 1
        return self.rate * qty

    def __getstate__(self):  # the key is the rate, not the run counter
        return {"rate": self.rate}


def test_methods():
    a, b = Pricing(2), Pricing(3)
    assert (a.price(10), a.price(10), b.price(10), Pricing(2).price(10)) == (20, 20, 30, 20)
    assert (a.ran, b.ran) == (1, 1)
    m = Pricing.price.metrics()
    assert (m["hits"], m["misses"]) == (2, 2)
    assert m["function"] == "test_cached.Pricing.price"


def test_ttl_and_cache_clear(registry):
    ran = []

    @cachemeter.cached(registry=registry, ttl=0.05)
    def f(x):
        ran.append(x)
        return x

    f(1)
    f(1)
    assert ran == [1]
    poll(lambda: (f(1), len(ran) == 2)[1], what="the entry's expiry")
    f.cache_clear()
    f(1)
    assert ran == [1, 1, 1]


def test_none_results_are_cached(registry):
    ran = []

    @cachemeter.cached(registry=registry)
    def f():
        ran.append(1)

    assert f() is None and f() is None
    assert ran == [1]


def test_exceptions_propagate_and_are_not_cached(registry):
    ran = []

    @cachemeter.cached(registry=registry)
    def f(x):
        ran.append(x)
        raise ValueError(f"bad {x}")

    for _ in range(2):
        with pytest.raises(ValueError, match="bad 1"):
            f(1)
    assert ran == [1, 1]
    assert f.metrics()["errors"] == 2 and f.metrics()["misses"] == 0


def test_shared_cache_serializer_and_key(registry):
    with cachemeter.Cache("memory://", "shared", registry=registry) as shared:
        @cachemeter.cached(cache=shared, serializer=json, key=lambda x: str(x))
        def a(x):
            return {"a": x}

        @cachemeter.cached(cache=shared, serializer=json, key=lambda x: str(x))
        def b(x):
            return {"b": x}

        assert a(1) == {"a": 1} and b(1) == {"b": 1}  # function names keep keys apart
        assert a(1) == {"a": 1} and b(1) == {"b": 1}
        assert a.metrics()["hits"] == b.metrics()["hits"] == 1
        assert a.metrics()["cache"] == "shared"
        stored = [shared.get(k) for k in (b"x",)]  # json bytes are stored
        assert stored == [None]


@needs_sqlite
def test_cache_given_as_uri(registry, tmp_path):
    uri = f"sqlite://{tmp_path / 'memo.db'}"

    @cachemeter.cached(cache=uri, registry=registry, name="memo.f")
    def f(x):
        return x * 10

    assert f(2) == 20 and f(2) == 20
    assert f.metrics()["hits"] == 1
    assert f.cache.uri == uri and f.cache.name == "memo.f"


def test_concurrent_callers_run_the_function_once(registry):
    release = threading.Event()
    ran = []

    @cachemeter.cached(registry=registry)
    def slow(x):
        ran.append(x)
        assert release.wait(BOUND)
        return x

    results = []
    threads = [threading.Thread(target=lambda: results.append(slow(7))) for _ in range(8)]
    for t in threads:
        t.start()
    poll(lambda: slow.cache.stats()["misses"] >= 8, what="8 callers in the flight")
    release.set()
    for t in threads:
        t.join(BOUND)
    assert results == [7] * 8 and ran == [7]
    m = slow.metrics()
    assert (m["hits"], m["misses"]) == (7, 1)


def test_bare_decorator_and_prefix():
    with cachemeter.Registry(prefix="app_") as reg:
        @cachemeter.cached(registry=reg)
        def f():
            return 1

        f()
        assert calls_metric(reg, f.metrics()["function"], "miss", prefix="app_") == 1.0

    @cachemeter.cached
    def g():
        return 2

    assert g() == 2 and g() == 2
    assert g.cache.registry is cachemeter.Registry.default()
