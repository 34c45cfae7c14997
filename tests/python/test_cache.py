# SPDX-License-Identifier: Apache-2.0
"""Cache handles from Python: bytes/str keys and values, TTLs, stats,
get_or_load (a Python loader called from C: values, None, exceptions,
single flight), sqlite:// and tiered caches, redis, and lifetimes."""
from __future__ import annotations

import gc
import math
import threading

import pytest

import cachemeter
from conftest import BOUND, needs_sqlite, poll


@pytest.fixture
def cache(registry):
    with cachemeter.Cache("memory://?max_entries=1000", "users", registry=registry) as c:
        yield c


def counter_value(registry, name, **labels):
    from prometheus_client.parser import text_string_to_metric_families
    for fam in text_string_to_metric_families(registry.render()):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_get_set_delete_bytes_and_str(cache):
    assert cache.get(b"alice") is None
    cache.set(b"alice", b"admin")
    assert cache.get(b"alice") == b"admin"
    assert cache.get("alice") == b"admin"  # str keys are their UTF-8
    cache.set("zoë", "naïve")
    assert cache.get("zoë".encode()) == "naïve".encode()
    cache.set(bytearray(b"k\x00ey"), memoryview(b"v\x00al"))  # buffers, embedded NULs
    assert cache.get(b"k\x00ey") == b"v\x00al"
    cache.set("empty", b"")
    assert cache.get("empty") == b""
    assert cache.delete("alice") is True
    assert cache.delete("alice") is False
    assert cache.get("alice") is None
    with pytest.raises(TypeError, match="key must be bytes or str"):
        cache.get(42)
    with pytest.raises(TypeError, match="value must be bytes or str"):
        cache.set("k", 42)
    with pytest.raises(cachemeter.InvalidArgument, match="empty"):
        cache.get(b"")


def test_mapping_conveniences(cache):
    cache["a"] = b"1"
    assert "a" in cache and "b" not in cache
    assert cache["a"] == b"1"
    with pytest.raises(KeyError):
        cache["b"]
    del cache["a"]
    with pytest.raises(KeyError):
        del cache["a"]


def test_clear_stats_and_reset(cache):
    for i in range(10):
        cache.set(f"k{i}", b"v")
    assert cache.get("k1") == b"v"
    assert cache.get("nope") is None
    st = cache.stats()
    assert st["hits"] == 1 and st["misses"] == 1
    assert st["entries"] == 10
    cache.clear()
    assert cache.get("k1") is None
    assert cache.stats()["entries"] == 0
    cache.reset_stats()
    assert cache.stats()["hits"] == 0


def test_ttl(registry):
    with cachemeter.Cache("memory://", "ttl", registry=registry) as c:
        c.set("short", b"x", ttl=0.05)
        c.set("forever", b"y", ttl=math.inf)
        c.set("default", b"z")  # no ttl_ms in the URI: never expires
        assert c.get("short") == b"x"
        poll(lambda: c.get("short") is None, what="the entry's expiry")
        assert c.get("forever") == b"y" and c.get("default") == b"z"
        for bad in (0, -1, float("nan")):
            with pytest.raises(cachemeter.InvalidArgument, match="ttl"):
                c.set("k", b"v", ttl=bad)
    with cachemeter.Cache("memory://?ttl_ms=50", "ttl-default", registry=registry) as c:
        c.set("k", b"v")
        poll(lambda: c.get("k") is None, what="the default ttl_ms expiry")


def test_limits_and_bad_uris(registry):
    with cachemeter.Cache("memory://?max_entry_bytes=16", "small", registry=registry) as c:
        with pytest.raises(cachemeter.LimitExceeded) as e:
            c.set("key", b"x" * 100)
        assert e.value.status == cachemeter._core.CM_ELIMIT
    with pytest.raises(cachemeter.InvalidArgument, match="bogus"):
        cachemeter.Cache("memory://?bogus=1", "bad", registry=registry)
    with pytest.raises(cachemeter.InvalidArgument):
        cachemeter.Cache("nosuch://", "bad", registry=registry)
    with pytest.raises(cachemeter.InvalidArgument):
        cachemeter.Cache("memory://", "", registry=registry)


def test_get_or_load_loads_once_then_hits(cache, registry):
    calls = []

    def load(key):
        calls.append(key)
        return b"value of " + key.encode()

    assert cache.get_or_load("bob", load) == b"value of bob"
    assert cache.get_or_load("bob", load) == b"value of bob"
    assert calls == ["bob"]
    assert cache.get_or_load("s", lambda k: "str é") == "str é".encode()
    assert cache.get_or_load(b"b", lambda k: bytearray(b"buf")) == b"buf"
    assert counter_value(registry, "cachemeter_cache_loads_total", cache="users", result="ok") == 3.0
    # memory://: the hit is looked up keeping the GIL (cm_cache_get_hit), and
    # each call still counts once: 3 misses (loads), 1 hit.
    assert (cache.stats()["hits"], cache.stats()["misses"]) == (1, 3)


@needs_sqlite
def test_get_or_load_on_sqlite_counts_each_call_once(registry, tmp_path):
    with cachemeter.Cache(f"sqlite://{tmp_path / 'gol.db'}", "gol", registry=registry) as c:
        assert [c.get_or_load("k", lambda k: b"v") for _ in range(3)] == [b"v"] * 3
        assert (c.stats()["hits"], c.stats()["misses"]) == (2, 1)


def test_get_or_load_none_is_a_miss_and_nothing_is_cached(cache):
    calls = []
    assert cache.get_or_load("ghost", lambda k: calls.append(k)) is None
    assert cache.get_or_load("ghost", lambda k: calls.append(k)) is None
    assert len(calls) == 2
    assert cache.get("ghost") is None


def test_get_or_load_propagates_the_loaders_exception(cache, registry):
    class Boom(Exception):
        pass

    def load(key):
        raise Boom(f"cannot load {key}")

    with pytest.raises(Boom, match="cannot load k") as e:
        cache.get_or_load("k", load)
    assert any(f.name == "load" for f in e.traceback)  # the loader's own traceback
    assert cache.get("k") is None
    with pytest.raises(TypeError, match="loader's return value must be bytes or str"):
        cache.get_or_load("k", lambda k: 42)
    with pytest.raises(ZeroDivisionError):
        cache.get_or_load("k", lambda k: 1 / 0)
    assert counter_value(registry, "cachemeter_cache_loads_total", cache="users", result="error") == 3.0
    assert cache.get_or_load("k", lambda k: b"fine") == b"fine"  # nothing stuck


def in_flight(cache, n):
    """Polls until n get_or_load callers have missed: each counts its miss
    after joining (or starting) the key's flight, before waiting on it."""
    poll(lambda: cache.stats()["misses"] >= n, what=f"{n} callers in the flight")
    assert cache.stats()["misses"] == n


def test_get_or_load_single_flight_across_threads(cache):
    """8 threads miss one key: one load; the others wait and get its value."""
    release = threading.Event()
    calls = []

    def load(key):
        calls.append(threading.get_ident())
        assert release.wait(BOUND)
        return b"loaded"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load("hot", load))) for _ in range(8)]
    for t in threads:
        t.start()
    in_flight(cache, 8)  # they wait with the GIL released: this thread runs
    release.set()
    for t in threads:
        t.join(BOUND)
    assert results == [b"loaded"] * 8
    assert len(calls) == 1


def run_failing_flight(cache, exc, waiters=3):
    """A leader whose loader raises exc once `waiters` callers wait for it.
    Returns (what the leader got, what each waiter got)."""
    release = threading.Event()
    out = {"waiters": []}

    def load(key):
        assert release.wait(BOUND)
        raise exc

    def never(key):
        raise AssertionError("a waiter ran the loader")

    def leader():
        try:
            out["leader"] = cache.get_or_load("k", load)
        except BaseException as e:  # noqa: BLE001 - the test looks at it
            out["leader"] = e

    def waiter():
        try:
            out["waiters"].append(cache.get_or_load("k", never))
        except BaseException as e:  # noqa: BLE001
            out["waiters"].append(e)

    t = threading.Thread(target=leader)
    t.start()
    in_flight(cache, 1)
    ts = [threading.Thread(target=waiter) for _ in range(waiters)]
    for w in ts:
        w.start()
    in_flight(cache, 1 + waiters)
    release.set()
    for w in [t, *ts]:
        w.join(BOUND)
    return out["leader"], out["waiters"]


def test_waiters_get_an_error_when_the_load_fails(cache):
    """The leader's loader raises: the leader gets that very exception, each
    waiter a BackendError, and nothing is cached."""
    boom = RuntimeError("database down")
    leader, waiters = run_failing_flight(cache, boom)
    assert leader is boom
    assert len(waiters) == 3
    for e in waiters:
        assert isinstance(e, cachemeter.BackendError), repr(e)
        assert "loader failed" in str(e)
    assert cache.get("k") is None


def test_a_loader_raising_a_cachemeter_error_hands_its_status_to_waiters(cache):
    down = cachemeter.Unavailable("upstream is down")
    leader, waiters = run_failing_flight(cache, down, waiters=2)
    assert leader is down
    assert [type(e) for e in waiters] == [cachemeter.Unavailable] * 2
    assert "CM_EUNAVAILABLE" in str(waiters[0])


def test_waiting_for_a_slow_load_times_out(registry):
    with cachemeter.Cache("memory://?load_timeout_ms=50", "slow", registry=registry) as c:
        started, release = threading.Event(), threading.Event()

        def load(key):
            started.set()
            assert release.wait(BOUND)
            return b"late"

        t = threading.Thread(target=lambda: c.get_or_load("k", load))
        t.start()
        try:
            assert started.wait(BOUND)
            with pytest.raises(cachemeter.Timeout) as e:
                c.get_or_load("k", lambda k: b"never")
            assert e.value.status == cachemeter._core.CM_ETIMEOUT
            assert "load_timeout_ms" in str(e.value)
        finally:
            release.set()
            t.join(BOUND)
        assert c.get("k") == b"late"


def test_closed_cache(registry):
    c = cachemeter.Cache("memory://", "closing", registry=registry)
    get = c.get
    c.set("k", b"v")
    c.close()
    c.close()
    assert c.closed
    for call in (lambda: c.get("k"), lambda: c.set("k", b"v"), lambda: c.delete("k"), c.clear, c.stats,
                 lambda: c.get_or_load("k", lambda k: b"")):
        with pytest.raises(cachemeter.StateError, match="closed"):
            call()
    assert get("k") == b"v"  # a bound method held elsewhere keeps the handle open: no use-after-free
    del get
    gc.collect()


def test_cache_keeps_its_registry_alive():
    reg = cachemeter.Registry()
    c = cachemeter.Cache("memory://", "orphan", registry=reg)
    reg.close()
    del reg
    gc.collect()
    c.set("k", b"v")  # records metrics in the registry: it must still exist
    assert c.get("k") == b"v"
    assert c.registry.closed
    c.close()


@needs_sqlite
def test_sqlite_cache(tmp_path, registry):
    uri = f"sqlite://{tmp_path / 'cache.db'}?max_entries=100"
    with cachemeter.Cache(uri, "files", registry=registry) as c:
        c.set("k", b"v" * 1000, ttl=60)
        assert c.get("k") == b"v" * 1000
        assert c.get_or_load("x", lambda k: b"loaded") == b"loaded"
        assert c.delete("k") is True
    with cachemeter.Cache(uri, "files", registry=registry) as again:  # the entries are in the file
        assert again.get("x") == b"loaded"
        assert again.get("k") is None
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"garbage" * 1000)
    with pytest.raises(cachemeter.Corrupt):
        with cachemeter.Cache(f"sqlite://{foreign}", "f", registry=registry) as c:
            c.get("k")
    with pytest.raises(cachemeter.Unavailable):
        with cachemeter.Cache(f"sqlite://{tmp_path}/no/such/dir/c.db", "u", registry=registry) as c:
            c.set("k", b"v")


@needs_sqlite
def test_tiered_cache_over_sqlite(tmp_path, registry):
    l2 = f"sqlite://{tmp_path / 'l2.db'}"
    if not hasattr(cachemeter._core, "cm_cache_open_tiered"):
        with pytest.raises(cachemeter.Unavailable, match="cm_cache_open_tiered"):
            cachemeter.Cache.tiered("memory://", l2, "two", registry=registry)
        pytest.skip("the C API this binding was built from has no cm_cache_open_tiered")
    with cachemeter.Cache.tiered("memory://?max_entries=10", l2, "two", registry=registry) as c:
        c.set("k", b"v")
        assert c.get("k") == b"v"
        assert c.get_or_load("x", lambda k: b"X") == b"X"
    with cachemeter.Cache(l2.replace("l2.db", "l2.db?namespace=two"), "plain", registry=registry) as l2_only:
        assert l2_only.get("k") == b"v"  # the write reached L2
    with pytest.raises(cachemeter.InvalidArgument):
        cachemeter.Cache.tiered(l2, l2, "bad", registry=registry)  # L1 must be memory://


def test_redis_cache(redis_socket, registry):
    uri = f"redis+unix://{redis_socket}?prefix=pytest:"
    with cachemeter.Cache(uri, "shared", registry=registry) as c:
        c.set("k", b"v", ttl=30)
        assert c.get("k") == b"v"
        assert c.get_or_load("x", lambda k: b"X") == b"X"
        with cachemeter.Cache(uri, "shared2", registry=registry) as other:  # another handle, same store
            assert other.get("x") == b"X"
        assert c.delete("k") is True


def test_json_render_and_endpoint_give_each_caches_hit_ratios(registry):
    import json as _json
    import urllib.request

    users = cachemeter.Cache("memory://", "users", registry=registry)
    other = cachemeter.Cache("memory://", "other", registry=registry)
    users.set("a", b"1")
    assert users.get("a") == b"1"
    assert users.get("a") == b"1"
    assert users.get("b") is None
    assert other.get("x") is None
    caches = {c["cache"]: c for c in _json.loads(registry.render("json"))["caches"]}
    u = caches["users"]
    assert (u["backend"], u["hits"], u["misses"]) == ("memory", 2, 1)
    assert u["hit_ratio"] == 2 / 3
    assert u["hit_ratio_window"] == {"1m": 2 / 3, "5m": 2 / 3, "1h": 2 / 3}
    assert caches["other"]["hit_ratio"] == 0.0
    with cachemeter.Server(registry, listen="127.0.0.1:0") as srv:
        with urllib.request.urlopen(srv.url + "/metrics.json", timeout=10) as r:
            served = {c["cache"]: c for c in _json.loads(r.read())["caches"]}
    assert served["users"]["hit_ratio"] == 2 / 3
    users.close()
    other.close()
    assert _json.loads(registry.render("json"))["caches"] == []  # closed caches leave
