# SPDX-License-Identifier: Apache-2.0
"""No leaks through the binding, over a million get/set calls and loops of
every other typemap path (values out, loader buffers, rendered text, label
vectors, raised exceptions, handle objects):
- the resident set stays flat: a leaked C buffer (a missing cm_free) costs
  >= 100 bytes per call, >= 50 MiB over these loops; the bound allows
  16 MiB of allocator noise;
- the Python heap's block count stays flat (sys.getallocatedblocks): a
  leaked Python object per call -- a bytes, a SWIG handle object, a
  reference kept by a typemap -- shows as thousands of blocks; the bound
  allows a few hundred for caches warming up."""
from __future__ import annotations

import gc
import marshal
import os
import sys

import cachemeter
from cachemeter import _core

PAGE = os.sysconf("SC_PAGE_SIZE")
BOUND_BYTES = 16 << 20
BOUND_BLOCKS = 500


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def flat(fn, warmup_rounds=1, rounds=3):
    """Runs fn to warm up, then `rounds` more times; asserts that neither the
    Python heap's blocks nor the RSS grew past their bounds."""
    for _ in range(warmup_rounds):
        fn()
    gc.collect()
    before, blocks = rss(), sys.getallocatedblocks()
    for _ in range(rounds):
        fn()
    gc.collect()
    grown_blocks = sys.getallocatedblocks() - blocks
    assert grown_blocks < BOUND_BLOCKS, f"{grown_blocks} more Python heap blocks: objects leak"
    return rss() - before


def test_million_get_set_calls(registry):
    keys = [f"key-{i}".encode() for i in range(1000)]
    value = b"v" * 100
    with cachemeter.Cache("memory://?max_entries=2000", "leak", registry=registry) as c:
        get, set_ = c.get, c.set

        def loop():  # 2 x 166,667 calls; 3 rounds after the warm-up: 1M calls
            for i in range(166_667):
                k = keys[i % 1000]
                set_(k, value)
                assert get(k) is not None

        growth = flat(loop)
        assert growth < BOUND_BYTES, f"RSS grew {growth >> 10} KiB over 1M get/set calls"
        assert c.stats()["hits"] == 4 * 166_667


def test_other_typemap_paths(registry):
    with cachemeter.Cache("memory://?max_entries=500", "leak2", registry=registry) as c:
        fam = registry.counter("leak_fam", labels=("a", "b"))
        ptr = fam._p
        big = b"x" * 4096

        def loop():
            for i in range(20_000):
                c.get(f"missing-{i}")                                   # None path
                c.get_or_load(f"k{i % 1000}", lambda k: big)            # loader buffer (cm_alloc), evictions
                _core.cm_family_series(ptr, ("x", str(i % 50)))         # label vector typemap
                try:
                    registry.counter("bad name")                        # raise path
                except cachemeter.InvalidArgument:
                    pass
                try:
                    c.get_or_load(b"boom", lambda k: 1 / 0)             # loader exception path
                except ZeroDivisionError:
                    pass
            for _ in range(300):
                registry.render("openmetrics")                          # rendered text
                c.stats()                                               # stats JSON

        growth = flat(loop)
        assert growth < BOUND_BYTES, f"RSS grew {growth >> 10} KiB"


def test_cached_function_paths():
    """@cached's C callable: hits and misses of the codec (values decoded in
    C, keys on the stack or, past 240 bytes, the heap), pickled values,
    keyword calls (keys built in Python), a raising function, signed
    values, refused values (tampered, foreign) and results, and wrappers
    created and dropped."""
    reg = cachemeter.Registry()
    big = "k" * 1000

    @cachemeter.cached(cache="memory://?max_entries=300", registry=reg, serializer="pickle-unsafe")
    def f(i, s):
        if i < 0:
            raise ValueError(i)
        return [i, s, {"n": i}] if i % 2 else Point(i)

    @cachemeter.cached(cache="memory://?max_entries=300", registry=reg, serializer="pickle", secret=b"s" * 32,
                       name="leak.signed")
    def h(i):
        return Point(i) if i % 2 else [i]

    @cachemeter.cached(registry=reg, name="leak.refused")
    def r():
        return [Point(0)]

    def key(name, *args):
        return name.encode() + b"\0a" + marshal.dumps(args, 2)

    def loop():
        for i in range(20_000):
            f(i % 500, "s")                 # hits and misses (evictions past 300)
            f(i % 7, big)                   # heap key buffer
            f(i % 5, s="kw")                # slow key
            try:
                f(-1, "x")                  # the function raises
            except ValueError:
                pass
            h(i % 400)                      # signed values: sealed, verified, unpickled
            if i % 50 == 0:                 # refused values: tampered, foreign; a refused result type
                h(1)
                sealed = h.cache.get(key("leak.signed", 1))
                h.cache.set(key("leak.signed", 1), sealed[:-1] + bytes([sealed[-1] ^ 1]))
                h(1)
                f.cache.set(key(f.metrics()["function"], 1, "s"), b"\x80junk")
                f(1, "s")
                try:
                    r()
                except TypeError:
                    pass
        for i in range(200):
            g = cachemeter.cached(registry=reg, name=f"leak.g{i % 3}")(lambda x: x)
            g(1)
            g(1)
        f.cache.set(b"junk", b"\x01")
        for _ in range(1000):
            try:
                _core.codec_loads(b"(\x02\x00\x00\x00N")
            except cachemeter.Corrupt:
                pass

    growth = flat(loop)
    assert growth < BOUND_BYTES, f"RSS grew {growth >> 10} KiB"
    assert h.metrics()["rejected"] > 0 and f.metrics()["rejected"] > 0
    reg.close()


class Point:
    def __init__(self, x):
        self.x = x


def test_handles_are_freed():
    """Registries, caches and servers opened and dropped in a loop."""
    def loop():
        for i in range(300):
            reg = cachemeter.Registry()
            reg.counter("c", labels=("x",)).labels("1").inc()
            with cachemeter.Cache("memory://", f"c{i}", registry=reg) as c:
                c.set("k", b"v" * 1000)
            reg.close()
            _core.cm_family_series(_core.cm_counter_new(None, "leak_default", None, ("x",)), ("1",))

    growth = flat(loop)
    assert growth < BOUND_BYTES, f"RSS grew {growth >> 10} KiB"
