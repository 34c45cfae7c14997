# SPDX-License-Identifier: Apache-2.0
"""The @cached decorator: hits and misses, per-function metrics, methods,
unhashable and unpicklable arguments, key= and serializer=, ttl,
cache_clear, single flight across threads, exceptions."""
from __future__ import annotations

import gc
import inspect
import json
import marshal
import math
import pickle
import subprocess
import sys
import threading
import weakref
from enum import IntFlag

import pytest
from prometheus_client.parser import text_string_to_metric_families

import cachemeter
from cachemeter import _core
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
                                "rejected": 0, "cache": name}
    assert calls_metric(registry, name, "hit") == 2.0
    assert calls_metric(registry, name, "miss") == 2.0
    assert square.__name__ == "square" and square.__wrapped__(5) == 25
    # its own memory cache, named after the function, with the cache metrics
    assert square.cache.name == name and square.cache.registry is registry
    assert square.cache.stats()["hits"] == 2


def test_argument_kinds_and_unhashable_args(registry):
    ran = []

    @cachemeter.cached(registry=registry, serializer="pickle-unsafe")  # results hold a set, a Point
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


# ---- the C wrapper (_core.CachedFunction), its keys and its value codec

def test_the_wrapper_is_the_c_callable_and_counts_each_call_once(registry):
    @cachemeter.cached(registry=registry)
    def f(x):
        return x

    assert isinstance(f, _core.CachedFunction)
    for _ in range(3):
        f(1)
    f(2)
    # The hit lookup (cm_cache_get_hit) leaves misses to get_or_load: each
    # call is counted once in the cache's own series too.
    stats = f.cache.stats()
    assert (stats["hits"], stats["misses"]) == (2, 2)
    assert (f.metrics()["hits"], f.metrics()["misses"]) == (2, 2)


def key_of(fn_name, *args):
    return fn_name.encode() + b"\0a" + marshal.dumps(args, 2)


def test_keys_are_marshal_version_2_of_the_arguments(registry):
    """The C encoder writes the bytes marshal.dumps(args, 2) writes, so keys
    match whichever side built them (and those of earlier versions)."""
    @cachemeter.cached(registry=registry, name="k.f")
    def f(*args):
        return len(args)

    cases = [(1,), (1, "x"), (-2**31, 2**31 - 1, 2**31, -2**31 - 1, 2**63 - 1, -2**63), (1.5, -0.0, math.inf),
             ("é€😀", b"\0bytes"), ((1, (2, [3, {"a": None}])),), (True, False, None), ()]
    for args in cases:
        assert f(*args) == len(args)
        stored = f.cache.get(key_of("k.f", *args))
        assert stored == marshal.dumps(len(args), 2), args
    # Outside the encoder's types (a big int, a set, a subclass): the Python
    # side's marshal, the same format.
    for args in [(2**64,), ({1, 2},), (IntFlag(1),)]:
        f(*args)
    assert f.cache.get(key_of("k.f", 2**64)) is not None
    assert f.cache.get(key_of("k.f", {1, 2})) is not None


def test_values_marshal_core_types_pickle_the_rest_and_copy_on_each_hit(registry):
    @cachemeter.cached(registry=registry, name="v.f", serializer="pickle-unsafe")
    def f(kind):
        return {"list": [1, {"a": (2, 3.5)}], "point": Point(4), "none": None, "big": 2**70}[kind]

    assert f("list") == [1, {"a": (2, 3.5)}]
    got = f("list")
    got.append("mutated")  # a hit is a new object each time, as with pickle
    assert f("list") == [1, {"a": (2, 3.5)}]
    assert f.cache.get(key_of("v.f", "list")) == marshal.dumps([1, {"a": (2, 3.5)}], 2)
    assert f("point") == Point(4) and f("point") == Point(4)
    assert f.cache.get(key_of("v.f", "point"))[:1] == b"\x80"  # pickle
    assert f("none") is None and f("none") is None
    assert f("big") == 2**70 and f("big") == 2**70  # past 64 bits: pickle
    assert f.metrics()["misses"] == 4


def test_pickled_values_of_earlier_versions_are_refused_by_default(registry):
    """Earlier versions pickled non-core results under the default serializer;
    now such a value is refused (never unpickled): the function runs and its
    result replaces it. With pickle-unsafe (memory:// only) they still load."""
    ran = []

    @cachemeter.cached(registry=registry, name="old.f")
    def f(x):
        ran.append(x)
        return x

    f.cache.set(key_of("old.f", 1), pickle.dumps({"from": "an earlier version"}))
    assert f(1) == 1 and ran == [1]
    assert f.cache.get(key_of("old.f", 1)) == marshal.dumps(1, 2)
    assert f.metrics()["rejected"] == 1 and calls_metric(registry, "old.f", "miss") == 1.0

    @cachemeter.cached(registry=registry, name="old.g", serializer="pickle-unsafe")
    def g(x):
        ran.append(x)
        return x

    g.cache.set(key_of("old.g", 1), pickle.dumps({"from": "an earlier version"}))
    assert g(1) == {"from": "an earlier version"} and ran == [1]


def test_a_foreign_value_is_refused_not_a_crash(registry):
    """A value the decoder does not take is a miss: counted in
    cached_rejected_values_total{reason="undecodable"}, the function runs,
    its result overwrites the value (and a later call is a hit)."""
    ran = []

    @cachemeter.cached(registry=registry, name="bad.f", serializer="pickle-unsafe")
    def f(x):
        ran.append(x)
        return x

    garbage = [b"\x01", b"i\x01", b"u\x05\x00\x00\x00ab", b"N trailing", b"", b"(\x02\x00\x00\x00N",
               b"\x80\x04garbage", pickle.dumps(Point(1)).replace(b"Point", b"Pxint")]
    for n, data in enumerate(garbage, 1):
        f.cache.set(key_of("bad.f", 1), data)
        assert f(1) == 1 and len(ran) == n
        assert f.cache.get(key_of("bad.f", 1)) == marshal.dumps(1, 2)
        assert f(1) == 1 and len(ran) == n
    m = f.metrics()
    assert (m["rejected"], m["misses"], m["hits"]) == (len(garbage), len(garbage), len(garbage))
    fams = {s.labels.get("reason"): s.value for fam in text_string_to_metric_families(registry.render())
            for s in fam.samples if s.name == "cachemeter_cached_rejected_values_total"}
    assert fams == {"undecodable": len(garbage)}  # no secret: no "unverified" series


def test_codec_round_trips_exact_types_and_matches_marshal():
    cases = [None, True, False, 0, 1, -1, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**62, 2**63 - 1, -2**63,
             2**64 - 1 - 2**63, 0.0, -0.0, 1e308, math.inf, -math.inf, "", "ascii", "é€😀" * 100, b"", b"\x80\0",
             (), (1,), [], [1, [2, [3]]], {}, {"k": [1, 2], 3: (None,), b"b": 1.5, (1, 2): "tuple key"},
             "x" * 100_000, [list(range(100))] * 10]
    for obj in cases:
        data = _core.codec_dumps(obj)
        assert data == marshal.dumps(obj, 2), obj
        back = _core.codec_loads(data)
        assert back == obj and type(back) is type(obj)
    nan = _core.codec_loads(_core.codec_dumps(math.nan))
    assert math.isnan(nan)
    assert repr(_core.codec_loads(_core.codec_dumps(-0.0))) == "-0.0"
    deep = []  # 32 levels of lists: the most the codec takes
    for _ in range(31):
        deep = [deep]
    assert _core.codec_loads(_core.codec_dumps(deep)) == deep
    # Not taken: the caller falls back (pickle for values, marshal for keys).
    for obj in [2**63, -2**63 - 1, 2**100, {1}, frozenset(), 1j, IntFlag(1), Point(1), "\ud800", bytearray(b"x"),
                [deep], object()]:
        assert _core.codec_dumps(obj) is None, obj


def test_codec_rejects_what_it_did_not_write():
    bad = [b"", b"?", b"i\x01\x00", b"l\x01\x00\x00\x00", b"l\x06\x00\x00\x00" + b"\x01\x00" * 6,
           b"l\x01\x00\x00\x00\x00\x80", b"l\x02\x00\x00\x00\x01\x00\x00\x00",  # digit range, top digit 0
           b"u\xff\xff\xff\xff", b"u\x02\x00\x00\x00\xff\xfe", b"s\x05\x00\x00\x00ab", b"(\x01\x00\x00\x00",
           b"{N", b"{[\x00\x00\x00\x00N0", b"g\x00\x00", b"NN", b"c", b"\x80\x04N.",
           b"l\x05\x00\x00\x00" + b"\x00\x00" * 4 + b"\x08\x00",  # 2**63: past int64, never written
           b"u\x03\x00\x00\x00\xed\xa0\x80"]  # a lone surrogate (U+D800): the encoder refuses those
    for data in bad:
        with pytest.raises(cachemeter.Corrupt):
            _core.codec_loads(data)
    nested = b"[\x01\x00\x00\x00" * 32 + b"[\x00\x00\x00\x00"  # 33 levels
    with pytest.raises(cachemeter.Corrupt, match="deep"):
        _core.codec_loads(nested)
    with pytest.raises(TypeError):
        _core.codec_loads("not bytes")


def test_big_keys_and_values_go_past_the_stack_buffer(registry):
    @cachemeter.cached(registry=registry)
    def f(s, n):
        return s * n

    big = "k" * 5000
    assert f(big, 3) == big * 3 and f(big, 3) == big * 3
    assert f.metrics()["hits"] == 1


def test_recursion_and_keyword_calls(registry):
    @cachemeter.cached(registry=registry)
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    assert fib(60) == 1548008755920
    m = fib.metrics()
    assert m["misses"] == 61 and m["hits"] == 58
    assert fib(n=60) == 1548008755920  # keywords: the same call, the same entry
    assert fib.metrics()["misses"] == 61 and fib.metrics()["hits"] == 59


def test_a_raising_key_function_propagates(registry):
    def key(x):
        raise LookupError("no key")

    @cachemeter.cached(registry=registry, key=key)
    def f(x):
        return x

    with pytest.raises(LookupError, match="no key"):
        f(1)
    assert f.metrics() == {**f.metrics(), "hits": 0, "misses": 0, "errors": 0}


def test_wrapper_behaves_like_a_function(registry):
    @cachemeter.cached(registry=registry)
    def f(x):
        """Doubles."""
        return 2 * x

    assert f.__doc__ == "Doubles." and f.__name__ == "f" and f.__module__ == __name__
    assert inspect.signature(f) == inspect.signature(f.__wrapped__)
    assert "cached function" in repr(f)
    assert pickle.loads(pickle.dumps(module_level)) is module_level
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert ref() is None  # the cycle through __wrapped__'s globals is collectable


def test_generator_functions_are_refused_at_decoration(registry):
    # (async def is memoized: tests/python/test_async.py)
    def gen(x):
        yield x

    async def agen(x):
        yield x

    for fn in (gen, agen):
        with pytest.raises(TypeError, match="returns a generator"):
            cachemeter.cached(registry=registry)(fn)


@cachemeter.cached(name="test_cached.module_level")
def module_level(x):
    return x


def test_two_processes_share_results_through_redis(redis_socket, registry, tmp_path):
    """A @cached function on a redis cache (the path that releases the GIL for
    every lookup): a result computed by another process is a hit here, and
    the value written in C by one is read in C by the other."""
    uri = f"redis+unix://{redis_socket}?namespace=memo"
    child = tmp_path / "child.py"
    child.write_text(
        "import sys, cachemeter\n"
        "ran = []\n"
        f"@cachemeter.cached(cache={uri!r}, name='shared.price')\n"
        "def price(item, qty):\n"
        "    ran.append(item)\n"
        "    return {'item': item, 'total': qty * 2.5, 'tags': ('a', None)}\n"
        "assert price('apple', 4) == {'item': 'apple', 'total': 10.0, 'tags': ('a', None)}\n"
        "assert price('apple', 4)['total'] == 10.0\n"
        "m = price.metrics()\n"
        "assert (m['hits'], m['misses'], ran) == (1, 1, ['apple']), (m, ran)\n")
    r = subprocess.run([sys.executable, str(child)], capture_output=True, text=True, timeout=BOUND)
    assert r.returncode == 0, r.stdout + r.stderr

    ran = []

    @cachemeter.cached(cache=uri, registry=registry, name="shared.price")
    def price(item, qty):
        ran.append(item)
        return None

    assert price("apple", 4) == {"item": "apple", "total": 10.0, "tags": ("a", None)}
    assert ran == []  # computed by the child
    assert price("pear", 1) is None and ran == ["pear"]
    assert (price.metrics()["hits"], price.metrics()["misses"]) == (1, 1)
    assert price.cache.stats()["misses"] == 1


# ---- keyword spellings (issue 17, item 3) -----------------------------------

class Opaque:
    def __eq__(self, other):
        return isinstance(other, Opaque)

    def __hash__(self):
        return 1


def test_keyword_and_positional_spellings_are_one_entry(registry):
    calls = []

    @cachemeter.cached(registry=registry)
    def f(a, b, c=3, *, d=4):
        calls.append((a, b, c, d))
        return a + b + c + d

    # (1, 2): however it is spelled, one run.
    assert [f(1, 2), f(1, b=2), f(a=1, b=2), f(b=2, a=1)] == [10] * 4
    # (1, 2, 3): a different call as bind() sees it (defaults are not filled in).
    assert [f(1, 2, 3), f(1, 2, c=3), f(c=3, b=2, a=1)] == [10] * 3
    # A keyword-only argument keys apart, and its spellings agree too.
    assert [f(1, 2, d=4), f(a=1, b=2, d=4)] == [10] * 2
    assert calls == [(1, 2, 3, 4)] * 3
    assert f.metrics()["misses"] == 3 and f.metrics()["hits"] == 6


def test_keywords_after_a_gap_and_unencodable_arguments_bind_the_same(registry):
    calls = []

    @cachemeter.cached(registry=registry)
    def g(a, b=2, c=3):
        calls.append((a, b, c))
        return [a, b, c]

    # A gap (b left out): c stays a keyword in every spelling; the slow key binds them alike.
    assert g(1, c=5) == g(a=1, c=5) == g(c=5, a=1) == [1, 2, 5]
    assert len(calls) == 1

    h_calls = []

    @cachemeter.cached(registry=registry, serializer="pickle-unsafe")
    def h(x, y=0):
        h_calls.append(1)
        return 7

    o = Opaque()  # outside the C encoder's types: a pickled key, bound first
    assert h(o, 1) == h(o, y=1) == h(x=o, y=1) == h(y=1, x=o) == 7
    assert len(h_calls) == 1


def test_positional_only_parameters_are_not_keywords(registry):
    @cachemeter.cached(registry=registry)
    def p(a, /, b):
        return a * 10 + b

    assert p(1, 2) == p(1, b=2) == 12
    assert p.metrics()["misses"] == 1
    with pytest.raises(TypeError):
        p(a=1, b=2)  # the function's own error, not a cache entry


def test_keyword_spelling_reaches_the_function_as_written(registry):
    seen = []

    @cachemeter.cached(registry=registry)
    def k(a, b, **rest):
        seen.append((a, b, rest))
        return len(rest)

    assert k(1, b=2) == 0
    assert seen == [(1, 2, {})]
    assert k(1, 2, z=3) == 1 and k(1, b=2, z=3) == 1  # **rest: one entry per bound spelling
    assert seen[-1] == (1, 2, {"z": 3}) and len(seen) == 2
