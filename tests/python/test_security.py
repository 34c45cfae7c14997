# SPDX-License-Identifier: Apache-2.0
"""The serializer rule: a value read back from a cache never runs code unless
the user opted in to that trust (bindings/README.md, "The serializer rule").

The attacker here can write to the store behind a cache (the Redis server,
the SQLite file) but does not hold the secret: they write a crafted pickle
under the key the decorator computes (it is predictable: the function's
name and marshal of its arguments), straight into the store, without
cachemeter. Unpickling that value would create a marker file."""
from __future__ import annotations

import marshal
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

import cachemeter
from conftest import BOUND, needs_sqlite

SECRET = b"a test secret, 32 bytes long...."
OTHER_SECRET = b"another secret, also long enough"


class Evil:
    """A pickle whose loading runs code of the writer's choice (here: it
    creates the marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


class Point:
    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return isinstance(other, Point) and other.x == self.x


def key_of(fn_name, *args):
    """The key @cached computes for fn_name(*args) (positional core-type arguments)."""
    return fn_name.encode() + b"\0a" + marshal.dumps(args, 2)


def rejected(registry, function):
    """{reason: count} of cached_rejected_values_total for function."""
    return {s.labels["reason"]: s.value for fam in text_string_to_metric_families(registry.render())
            for s in fam.samples
            if s.name == "cachemeter_cached_rejected_values_total" and s.labels.get("function") == function}


# ---- the stores, written to from outside cachemeter

def resp(sock_path, *args):
    """One Redis command over the unix socket, in plain RESP (no client library)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(BOUND)
        s.connect(sock_path)
        s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        f = s.makefile("rb")
        line = f.readline()
        if line[:1] == b"$":
            n = int(line[1:])
            return None if n < 0 else f.read(n + 2)[:-2]
        assert line[:1] in b"+:", line
        return line


class Store:
    """A cache URI and raw access to the value stored under a cache key, as an
    attacker with write access to the store has it."""

    def __init__(self, uri, read, write):
        self.uri, self.read, self.write = uri, read, write


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "memory":
        # No other process can write there: written through a second call on
        # the function's own handle (what a bug elsewhere in the process could do).
        holder = {}

        def read(key):
            return holder["cache"].get(key)

        def write(key, value):
            holder["cache"].set(key, value)

        st = Store("memory://", read, write)
        st.holder = holder
        return st
    if request.param == "sqlite":
        if os.environ.get("CM_TEST_WITH_SQLITE", "1") != "1":
            pytest.skip("built without CM_WITH_SQLITE")
        path = tmp_path / "shared.db"

        def read(key):
            with sqlite3.connect(path, timeout=BOUND) as db:
                row = db.execute("SELECT value FROM cm_entries WHERE key = ?", (key,)).fetchone()
            return row and row[0]

        def write(key, value):
            with sqlite3.connect(path, timeout=BOUND) as db:
                assert db.execute("UPDATE cm_entries SET value = ? WHERE key = ?", (value, key)).rowcount == 1
        return Store(f"sqlite://{path}", read, write)
    sock = request.getfixturevalue("redis_socket")
    header = 20  # the redis backend's own header (redis.h): kept, the payload replaced

    def read(key):
        value = resp(sock, b"GET", b"sec:" + key)
        return value and value[header:]

    def write(key, value):
        old = resp(sock, b"GET", b"sec:" + key)
        assert old is not None
        resp(sock, b"SET", b"sec:" + key, old[:header] + value)
    return Store(f"redis+unix://{sock}?prefix=sec:", read, write)


def decorate(store, registry, name, **kwargs):
    """@cached on the store's cache, its function recording its runs in .ran."""
    ran = []

    @cachemeter.cached(cache=store.uri, registry=registry, name=name, **kwargs)
    def f(x):
        ran.append(x)
        return {"real": x, "point": Point(x)} if kwargs else {"real": x}

    f.ran = ran
    if hasattr(store, "holder"):
        store.holder["cache"] = f.cache
    return f


# ---- the default serializer: nothing read back runs code

def test_a_crafted_pickle_never_runs_by_default(store, registry, tmp_path):
    marker = tmp_path / "marker"
    f = decorate(store, registry, "sec.default")
    assert f(1) == {"real": 1}
    store.write(key_of("sec.default", 1), pickle.dumps(Evil(marker), protocol=2))

    got = f(1)
    assert not marker.exists(), "a value read from the cache ran code"
    assert got == {"real": 1}  # the function's own result, not the attacker's
    assert f.ran == [1, 1]
    assert rejected(registry, "sec.default") == {"undecodable": 1.0}
    assert f.metrics()["rejected"] == 1
    # the refused value was overwritten: the next call is a hit
    assert store.read(key_of("sec.default", 1)) == marshal.dumps({"real": 1}, 2)
    assert f(1) == {"real": 1} and f.ran == [1, 1]
    assert (f.metrics()["hits"], f.metrics()["misses"]) == (1, 2)


def test_a_result_the_default_serializer_does_not_take_is_a_type_error(registry):
    @cachemeter.cached(registry=registry)
    def point(x):
        return Point(x)

    @cachemeter.cached(registry=registry)
    def nested(x):
        return {"ok": [1, {2, 3}]}

    with pytest.raises(TypeError, match=r'cannot store a result of type Point.*serializer="pickle"'):
        point(1)
    with pytest.raises(TypeError, match=r"type dict \(holding a set\).*serializer="):
        nested(1)
    assert point.metrics()["errors"] == 1 and point.cache.stats()["entries"] == 0  # nothing stored


def test_threads_reading_one_refused_value_all_get_the_real_result(registry, tmp_path):
    marker = tmp_path / "marker"

    @cachemeter.cached(registry=registry, name="sec.threads")
    def f(x):
        return {"real": x}

    errors, results = [], []

    def reader():
        try:
            for _ in range(200):
                results.append(f(1))
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(e)

    def writer():
        for _ in range(200):
            f.cache.set(key_of("sec.threads", 1), pickle.dumps(Evil(marker)))

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert not errors and not marker.exists()
    assert results == [{"real": 1}] * 800
    m = f.metrics()
    # every miss but (perhaps) the first call's was a refused value, recomputed
    assert m["hits"] + m["misses"] == 800 and m["rejected"] in (m["misses"] - 1, m["misses"])


# ---- serializer="pickle": signed values

def test_signed_pickle_refuses_unsigned_and_forged_values(store, registry, tmp_path):
    marker = tmp_path / "marker"
    f = decorate(store, registry, "sec.signed", serializer="pickle", secret=SECRET)
    assert f(1) == {"real": 1, "point": Point(1)}
    key = key_of("sec.signed", 1)
    sealed = store.read(key)
    assert sealed[:2] == b"\xc5\x01" and len(sealed) > 42  # magic, version, key id, tag: 42 bytes
    evil = pickle.dumps(Evil(marker), protocol=5)
    for n, forged in enumerate([evil,                         # not signed at all
                                sealed[:42] + evil,           # a valid header over another payload
                                sealed[:10] + bytes(32) + evil], 1):  # a made-up tag
        store.write(key, forged)
        got = f(1)
        assert not marker.exists(), "an unverified value was unpickled"
        assert got == {"real": 1, "point": Point(1)}
        assert len(f.ran) == 1 + n
    assert rejected(registry, "sec.signed") == {"unverified": 3.0, "undecodable": 0.0}
    assert f(1) == {"real": 1, "point": Point(1)} and len(f.ran) == 4  # overwritten, signed: a hit


def test_a_tampered_value_is_a_miss_and_counted(registry):
    f = decorate(Store("memory://", None, None), registry, "sec.tamper", serializer="pickle", secret=SECRET)
    f(1)
    key = key_of("sec.tamper", 1)
    sealed = f.cache.get(key)
    tampered = [sealed[:-1] + bytes([sealed[-1] ^ 1]),   # a payload bit
                sealed[:20] + bytes([sealed[20] ^ 1]) + sealed[21:],  # a tag bit
                sealed[:2] + bytes(8) + sealed[10:],     # an unknown key id
                sealed[:41], b"", b"\xc5"]
    for value in tampered:
        f.cache.set(key, value)
        assert f(1)["real"] == 1
    assert len(f.ran) == 1 + len(tampered)
    assert rejected(registry, "sec.tamper")["unverified"] == len(tampered)
    assert f.metrics()["rejected"] == len(tampered)
    assert f.metrics()["misses"] == 1 + len(tampered) and f.metrics()["hits"] == 0


def test_a_signed_value_moved_to_another_key_does_not_verify(registry):
    """The tag covers the key: a value signed for f(1) is refused under f(2)."""
    f = decorate(Store("memory://", None, None), registry, "sec.move", serializer="pickle", secret=SECRET)
    f(1)
    f(2)
    f.cache.set(key_of("sec.move", 2), f.cache.get(key_of("sec.move", 1)))
    assert f(2)["real"] == 2 and f.ran == [1, 2, 2]
    assert rejected(registry, "sec.move")["unverified"] == 1


@needs_sqlite
def test_the_right_secret_round_trips_any_object_across_processes(registry, tmp_path, monkeypatch):
    """A child process with CACHEMETER_SECRET stores signed pickles in a
    sqlite file; here, secret= with the same bytes reads them (hits, the
    function never runs); a wrong secret is a miss; a rotation list verifies
    values signed by its older secret."""
    db = tmp_path / "signed.db"
    child = tmp_path / "child.py"
    child.write_text(
        "import fractions, cachemeter\n"
        f"@cachemeter.cached(cache={f'sqlite://{db}'!r}, name='sec.objects', serializer='pickle')\n"
        "def objects(n):\n"
        "    return {'set': {1, 2}, 'big': 2**100 + n, 'complex': 1j, 'frac': fractions.Fraction(1, 3),\n"
        "            'frozen': frozenset('ab'), 'bytes': bytearray(b'x'), 'n': n}\n"
        "for n in range(3):\n"
        "    objects(n)\n"
        "assert objects.metrics()['misses'] == 3\n")
    env = dict(os.environ, CACHEMETER_SECRET=SECRET.decode())
    r = subprocess.run([sys.executable, str(child)], capture_output=True, text=True, timeout=BOUND, env=env)
    assert r.returncode == 0, r.stdout + r.stderr

    import fractions
    ran = []

    def objects(n):
        ran.append(n)
        return None

    monkeypatch.delenv("CACHEMETER_SECRET", raising=False)
    right = cachemeter.cached(cache=f"sqlite://{db}", registry=registry, name="sec.objects", serializer="pickle",
                              secret=SECRET)(objects)
    got = right(1)
    assert got == {"set": {1, 2}, "big": 2**100 + 1, "complex": 1j, "frac": fractions.Fraction(1, 3),
                   "frozen": frozenset("ab"), "bytes": bytearray(b"x"), "n": 1}
    assert ran == [] and right.metrics()["hits"] == 1

    rotated = cachemeter.cached(cache=f"sqlite://{db}", registry=registry, name="sec.objects",
                                serializer="pickle", secret=[OTHER_SECRET, SECRET])(objects)
    assert rotated(2)["n"] == 2 and ran == []  # the old secret still verifies

    with cachemeter.Registry() as other:
        wrong = cachemeter.cached(cache=f"sqlite://{db}", registry=other, name="sec.objects",
                                  serializer="pickle", secret=OTHER_SECRET)(objects)
        assert wrong(0) is None and ran == [0]  # a miss: the function ran
        assert wrong.metrics()["rejected"] == 1 and rejected(other, "sec.objects")["unverified"] == 1
    assert right(0) is None and ran == [0, 0]  # the wrong secret's value is refused here in turn


def test_the_environment_variable_is_the_default_secret(registry, monkeypatch):
    monkeypatch.setenv("CACHEMETER_SECRET", SECRET.decode())

    @cachemeter.cached(registry=registry, name="sec.env", serializer="pickle")
    def f(x):
        return Point(x)

    assert f(1) == Point(1) and f(1) == Point(1)
    sealed = f.cache.get(key_of("sec.env", 1))
    from cachemeter._cached import _Sealer
    assert _Sealer([SECRET]).unseal(key_of("sec.env", 1), sealed) is not None
    assert _Sealer([OTHER_SECRET]).unseal(key_of("sec.env", 1), sealed) is None

    monkeypatch.setenv("CACHEMETER_SECRET", "short")
    with pytest.raises(cachemeter.InvalidArgument, match="CACHEMETER_SECRET must be at least 16 bytes"):
        cachemeter.cached(registry=registry, serializer="pickle")(lambda: 1)


# ---- what is refused at decoration

def test_pickle_without_a_secret_is_refused_at_decoration(registry, monkeypatch):
    monkeypatch.delenv("CACHEMETER_SECRET", raising=False)
    for serializer in ("pickle", pickle):
        with pytest.raises(ValueError, match=r'serializer="pickle" needs a secret.*CACHEMETER_SECRET'):
            cachemeter.cached(registry=registry, serializer=serializer)(lambda: 1)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        cachemeter.cached(registry=registry, serializer="pickle", secret=b"short")(lambda: 1)
    with pytest.raises(TypeError, match="secret= must be bytes or str"):
        cachemeter.cached(registry=registry, serializer="pickle", secret=12345)(lambda: 1)
    with pytest.raises(ValueError, match="secret= is empty"):
        cachemeter.cached(registry=registry, serializer="pickle", secret=[])(lambda: 1)
    with pytest.raises(ValueError, match="unknown serializer"):
        cachemeter.cached(registry=registry, serializer="marshal")(lambda: 1)
    with pytest.raises(TypeError, match="dumps"):
        cachemeter.cached(registry=registry, serializer=object())(lambda: 1)


def test_pickle_unsafe_is_for_memory_caches_only(registry, tmp_path, request):
    @cachemeter.cached(registry=registry, serializer="pickle-unsafe")
    def f(x):
        return Point(x)

    assert f(1) == Point(1) and f(1) == Point(1) and f.metrics()["hits"] == 1
    shared = []
    if os.environ.get("CM_TEST_WITH_SQLITE", "1") == "1":
        shared.append(f"sqlite://{tmp_path / 'x.db'}")
    if os.environ.get("CM_TEST_WITH_REDIS", "1") == "1":
        shared.append(f"redis+unix://{request.getfixturevalue('redis_socket')}")
    assert shared, "no shared backend built"
    for uri in shared:
        with pytest.raises(ValueError, match=r'"pickle-unsafe" is for memory:// caches only') as info:
            cachemeter.cached(cache=uri, registry=registry, serializer="pickle-unsafe")(lambda: 1)
        assert str(tmp_path) not in str(info.value) and "sock" not in str(info.value)  # the scheme, not the URI
        with cachemeter.Cache(uri, "given", registry=registry) as c:  # a Cache object: the same rule
            with pytest.raises(ValueError, match="memory:// caches only"):
                cachemeter.cached(cache=c, serializer="pickle-unsafe")(lambda: 1)
            if hasattr(cachemeter._core, "cm_cache_open_tiered"):
                with cachemeter.Cache.tiered("memory://", uri, "tiered", registry=registry) as t:
                    with pytest.raises(ValueError, match="memory:// caches only"):  # L2 is shared
                        cachemeter.cached(cache=t, serializer="pickle-unsafe")(lambda: 1)
    with pytest.raises(ValueError, match="unsigned"):
        cachemeter.cached(registry=registry, serializer="pickle-unsafe", secret=SECRET)(lambda: 1)


# ---- the rest of the package hands back bytes, never objects

def test_cache_get_and_get_or_load_return_bytes_never_unpickled(registry, tmp_path):
    marker = tmp_path / "marker"
    evil = pickle.dumps(Evil(marker))
    with cachemeter.Cache("memory://", "raw", registry=registry) as c:
        c.set("k", evil)
        assert c.get("k") == evil
        assert c.get_or_load("k", lambda k: b"loaded") == evil
    assert not marker.exists()


def test_a_user_serializer_can_be_signed_too(registry):
    import json
    ran = []

    @cachemeter.cached(registry=registry, name="sec.json", serializer=json, secret=SECRET)
    def f(x):
        ran.append(x)
        return {"x": x}

    assert f(1) == {"x": 1} and f(1) == {"x": 1} and ran == [1]
    f.cache.set(key_of("sec.json", 1), b'{"x": 666}')  # unsigned JSON: refused
    assert f(1) == {"x": 1} and ran == [1, 1]
    assert f.metrics()["rejected"] == 1
