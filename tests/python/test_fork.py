# SPDX-License-Identifier: Apache-2.0
"""Fork safety from Python (docs/threading.md, "fork()"; issue 13, item 2).

Handles created and used before ``os.fork()``, the way gunicorn --preload and
multiprocessing's "fork" start method use them, keep working in both
processes: memory://, sqlite://, redis:// and tiered caches, @cached
functions, metrics, a multiprocessing Pool, forks while other threads work,
and a persisting registry (which stays with the parent).

A child reports through its exit status (os._exit: no pytest teardown, no
finalizer of the parent's objects runs in it) and writes what went wrong to
a file the parent shows; the parent polls waitpid with a generous deadline
and kills a child that hangs.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import select
import signal
import threading
import time
import traceback
import warnings

import pytest

import cachemeter
from conftest import BOUND, needs_sqlite, poll

THREADS = 4
CHILD_BOUND = 60.0  # seconds a child may take (it takes well under one)

# Python 3.12 deprecates fork() in a process with threads; these tests fork
# such processes on purpose (as pre-fork servers do).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ---- fork plumbing
def fork_child(body, errfile):
    """Forks; the child runs body() and exits 0, or writes the traceback to
    errfile and exits 1. Returns the child's pid (in the parent only)."""
    pid = os.fork()
    if pid != 0:
        return pid
    code = 1
    try:
        body()
        code = 0
    except BaseException:  # noqa: BLE001 - reported through errfile and the exit status
        try:
            with open(errfile, "a") as f:
                f.write(traceback.format_exc())
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


def wait_child(pid, errfile, bound=CHILD_BOUND):
    """Waits for the child with a deadline (killed and failed past it); fails
    unless it exited 0, showing what it wrote to errfile."""
    deadline = time.monotonic() + bound
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"child {pid} did not exit within {bound} s (killed)")
        time.sleep(0.005)
    why = open(errfile).read() if os.path.exists(errfile) else ""
    if os.WIFSIGNALED(status):
        pytest.fail(f"child {pid} killed by signal {os.WTERMSIG(status)}\n{why}")
    assert os.WEXITSTATUS(status) == 0, f"child {pid} exited {os.WEXITSTATUS(status)}:\n{why}"


def in_threads(n, target):
    """Runs target(i) in n threads; re-raises the first failure."""
    errors = []
    barrier = threading.Barrier(n)

    def body(i):
        try:
            barrier.wait(BOUND)
            target(i)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CHILD_BOUND)
        assert not t.is_alive(), "a thread did not finish"
    if errors:
        raise errors[0]


def value_of(key):
    """Every key has its own value: a reply that crossed to another key shows."""
    return b"value-of-" + key.encode() + b"-" + bytes(len(key) % 7 * 5)


def keys(tag, t, n):
    return [f"{tag}:{t}:{i}" for i in range(n)]


def hammer(caches, tag, shared, rounds):
    """THREADS threads per cache: each sets and reads back keys of its own and
    reads the shared keys, checking every value."""
    def one(i):
        c = caches[i % len(caches)]
        t = i // len(caches)
        mine = keys(f"{tag}:{c.name}", t, rounds)
        for r, k in enumerate(mine):
            c.set(k, value_of(k))
            got = c.get(k)
            assert got == value_of(k), f"{c.name} {k}: {got!r}"
            s = shared[(r * 7 + t) % len(shared)]
            got = c.get(s)
            assert got == value_of(s), f"{c.name} shared {s}: {got!r}"
        for k in mine[::5]:
            got = c.get(k)
            assert got == value_of(k), f"{c.name} {k} reread: {got!r}"
    in_threads(THREADS * len(caches), one)


def redis_uri(sock, ns):
    return f"redis+unix://{sock}?namespace={ns}&pool=4&timeout_ms=5000"


def open_caches(registry, tmp_path, redis_socket, ns):
    caches = [cachemeter.Cache("memory://?max_entries=100000", f"{ns}_mem", registry=registry),
              cachemeter.Cache(f"sqlite://{tmp_path / (ns + '.db')}", f"{ns}_sql", registry=registry),
              cachemeter.Cache(redis_uri(redis_socket, ns), f"{ns}_red", registry=registry)]
    if hasattr(cachemeter._core, "cm_cache_open_tiered"):
        caches.append(cachemeter.Cache.tiered("memory://?max_entries=100000", redis_uri(redis_socket, ns + "_l2"),
                                              f"{ns}_tier", registry=registry))
    return caches


# ---- every backend, both processes hammering
@needs_sqlite
def test_both_processes_hammer_every_backend(redis_socket, registry, tmp_path):
    """Caches used from several threads before fork (so each pool holds
    several connections, the redis ones shared with the child by fork); then
    parent and child, each from several threads, write and read keys of
    their own and read the keys set before fork: every value is right in
    both. Inherited redis sockets used by both would cross replies (the
    child's get(k1) answered with k2's value)."""
    caches = open_caches(registry, tmp_path, redis_socket, "hf")
    shared = [f"shared:{i}" for i in range(50)]
    for c in caches:
        for s in shared:
            c.set(s, value_of(s))
    hammer(caches, "before", shared, rounds=50)  # every pool holds THREADS connections

    errfile = str(tmp_path / "child.err")

    def child():
        hammer(caches, "child", shared, rounds=300)
        # what the parent wrote before fork, read through every pool
        hammer(caches, "before", shared, rounds=50)

    pid = fork_child(child, errfile)
    try:
        hammer(caches, "parent", shared, rounds=300)
    finally:
        wait_child(pid, errfile)
    # the child's writes on the shared backends are seen by the parent
    for c in caches[1:]:
        for t in range(THREADS):
            for k in keys(f"child:{c.name}", t, 300)[::10]:
                assert c.get(k) == value_of(k), (c.name, k)
    # the memory cache is the parent's copy: the child's keys are not in it
    assert caches[0].get(keys(f"child:{caches[0].name}", 0, 1)[0]) is None
    for c in caches:
        c.close()


# ---- @cached
def _pipe_wait(fd, bound=CHILD_BOUND):
    r, _, _ = select.select([fd], [], [], bound)
    assert r, "the other process did not signal in time"
    assert os.read(fd, 1) == b"x"


@needs_sqlite
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_cached_in_both_processes(backend, request, registry, tmp_path):
    """@cached on a shared backend, used (from several threads) before fork:
    in each process the function runs exactly for the arguments not stored
    yet, and what one process computed is a hit in the other."""
    if backend == "sqlite":
        uri = f"sqlite://{tmp_path / 'memo.db'}"
    else:
        uri = redis_uri(request.getfixturevalue("redis_socket"), "memo")
    cache = cachemeter.Cache(uri, f"memo_{backend}", registry=registry)
    ran = []  # each process appends to its own copy

    @cachemeter.cached(cache=cache, name=f"fork.square_{backend}")
    def square(x):
        ran.append(x)
        return {"x": x, "square": x * x, "tag": ("sq", str(x))}

    def expect(x):
        return {"x": x, "square": x * x, "tag": ("sq", str(x))}

    def call_all(xs):
        def one(i):
            for x in xs[i::THREADS]:
                assert square(x) == expect(x), x
        in_threads(THREADS, one)

    call_all(list(range(40)))  # before fork: computed here
    assert sorted(ran) == list(range(40))
    del ran[:]
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    errfile = str(tmp_path / "child.err")

    def child():
        call_all(list(range(40)))  # stored before fork: hits
        assert ran == [], ran
        call_all(list(range(100, 140)))  # the child's own: computed here
        assert sorted(ran) == list(range(100, 140)), ran
        os.write(to_parent_w, b"x")
        _pipe_wait(to_child_r)  # the parent computed 200..239
        del ran[:]
        call_all(list(range(200, 240)) + list(range(100, 140)))
        assert ran == [], ran  # computed by the parent, and by this process

    pid = fork_child(child, errfile)
    try:
        call_all(list(range(40)))
        assert ran == [], ran
        call_all(list(range(200, 240)))  # the parent's own: computed here
        assert sorted(ran) == list(range(200, 240)), ran
        _pipe_wait(to_parent_r)  # the child computed 100..139
        del ran[:]
        call_all(list(range(100, 140)))
        assert ran == [], ran  # computed by the child: hits here
        os.write(to_child_w, b"x")
    finally:
        wait_child(pid, errfile)
        for fd in (to_child_r, to_child_w, to_parent_r, to_parent_w):
            os.close(fd)
    m = square.metrics()
    assert (m["misses"], m["errors"], m["rejected"]) == (40 + 40, 0, 0), m  # this process's copy
    cache.close()


# ---- multiprocessing, "fork" start method
_POOL_CACHES = {}


def _pool_task(args):
    """A Pool worker's task: the cache its parent created, keys of its own and
    the parent's shared keys, every value checked. Returns (pid, checked)."""
    name, n, rounds = args
    c = _POOL_CACHES[name]
    checked = 0
    for i in range(rounds):
        k = f"task:{n}:{i}"
        c.set(k, value_of(k))
        got = c.get(k)
        assert got == value_of(k), (name, k, got)
        s = f"shared:{(n + i) % 20}"
        got = c.get(s)
        assert got == value_of(s), (name, s, got)
        checked += 2
    return os.getpid(), checked


@needs_sqlite
def test_multiprocessing_pool_fork(redis_socket, registry, tmp_path):
    """A Pool of 4 workers forked from a process whose redis and sqlite caches
    were used from several threads: 32 tasks per cache, every value checked
    in the workers, and the parent reads what they wrote."""
    _POOL_CACHES["red"] = cachemeter.Cache(redis_uri(redis_socket, "pool"), "pool_red", registry=registry)
    _POOL_CACHES["sql"] = cachemeter.Cache(f"sqlite://{tmp_path / 'pool.db'}", "pool_sql", registry=registry)
    try:
        for c in _POOL_CACHES.values():
            for i in range(20):
                c.set(f"shared:{i}", value_of(f"shared:{i}"))
        hammer(list(_POOL_CACHES.values()), "pre", [f"shared:{i}" for i in range(20)], rounds=30)
        ctx = multiprocessing.get_context("fork")
        tasks = [(name, n, 100) for name in _POOL_CACHES for n in range(32)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pool = ctx.Pool(4)
        try:
            results = pool.map_async(_pool_task, tasks, chunksize=1).get(timeout=CHILD_BOUND)
        finally:
            pool.terminate()
            pool.join()
        assert [r[1] for r in results] == [200] * len(tasks)
        assert os.getpid() not in {r[0] for r in results}
        assert len({r[0] for r in results}) > 1  # the tasks were spread over workers
        for name, n, rounds in tasks:
            c = _POOL_CACHES[name]
            for i in range(0, rounds, 9):
                k = f"task:{n}:{i}"
                assert c.get(k) == value_of(k), (name, k)
    finally:
        for c in _POOL_CACHES.values():
            c.close()
        _POOL_CACHES.clear()


# ---- fork while other threads work
@needs_sqlite
def test_fork_while_threads_use_caches_and_metrics(redis_socket, registry, tmp_path):
    """20 forks while 4 threads update counters and histograms, create series,
    render and use memory, sqlite and redis caches: every child renders,
    creates a series, uses each cache, opens a new one and exits 0 in time
    (a lock of the library or the binding copied held into the child would
    hang it)."""
    caches = open_caches(registry, tmp_path, redis_socket, "busy")
    ops = registry.counter("busy_ops", "Ops.", labels=("thread",))
    made = registry.counter("busy_made", "Series made.", labels=("n",))
    sizes = registry.histogram("busy_sizes", "Sizes.", labels=("thread",), buckets=(1, 10, 100))
    stop = threading.Event()
    errors = []
    counts = [0] * 4

    def worker(t):
        try:
            c = caches[t % len(caches)]
            n = 0
            while not stop.is_set():
                k = f"w{t}:{n % 64}"
                c.set(k, value_of(k))
                got = c.get(k)
                assert got == value_of(k), (c.name, k, got)
                ops.labels(str(t)).inc()
                sizes.labels(str(t)).observe(n % 200)
                if n % 16 == t:
                    made.labels(f"{t}-{n}").inc()
                if n % 32 == t:
                    assert "busy_ops_total" in registry.render(("prometheus", "openmetrics", "json")[n % 3])
                n += 1
            counts[t] = n
        except BaseException as e:  # noqa: BLE001 - checked below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    try:
        for f in range(20):
            errfile = str(tmp_path / f"child{f}.err")

            def child(f=f):
                text = registry.render("prometheus")
                assert "busy_ops_total" in text and "busy_sizes_bucket" in text
                made.labels(f"child-{f}").inc()
                ops.labels("child").inc(2)
                sizes.labels("child").observe(5)
                assert made.labels(f"child-{f}").value == 1
                assert f'busy_made_total{{n="child-{f}"}} 1' in registry.render("prometheus")
                registry.render("openmetrics")
                registry.render("json")
                for c in caches:
                    k = f"child{f}:{c.name}"
                    c.set(k, value_of(k))
                    assert c.get(k) == value_of(k), (c.name, k)
                    assert c.delete(k)
                with cachemeter.Cache("memory://", f"child{f}_new", registry=registry) as n:
                    n.set("k", b"v")
                    assert n.get("k") == b"v"
                with cachemeter.Cache(f"sqlite://{tmp_path / ('child%d.db' % f)}", f"child{f}_newsql",
                                      registry=registry) as n:
                    n.set("k", b"v")
                    assert n.get("k") == b"v"

            pid = fork_child(child, errfile)
            wait_child(pid, errfile)
            time.sleep(0.002 * (f % 5))  # vary where the threads are at the next fork
    finally:
        stop.set()
        for t in threads:
            t.join(CHILD_BOUND)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert all(counts), counts  # every thread ran
    assert ops.labels("0").value == counts[0]
    for c in caches:
        c.close()


# ---- persistence stays with the parent
@needs_sqlite
def test_persisting_registry_in_a_child(tmp_path):
    """A registry persisting to a file, its flusher thread running, before
    fork: in the child, flush raises StateError (the file and its flusher
    belong to the parent), close() returns and freeing the C registry does
    not hang; the parent keeps flushing."""
    db = tmp_path / "metrics.db"
    reg = cachemeter.Registry()
    reg.persist(db, interval=0.02)
    c = reg.counter("persisted", "Persisted.")
    c.inc(3)

    def flushed():
        with cachemeter.Registry() as check:
            check.load(db)
            return check.counter("persisted", "Persisted.").value == 3

    # Written by the flusher thread on its own: it runs, and between flushes
    # it waits on a condition variable (the child's copy of which must not
    # wait for that waiter when the child frees the registry).
    poll(flushed, what="the background flush")
    held = {"reg": reg, "counter": c}  # the only references: dropping them frees the C registry
    del reg, c
    errfile = str(tmp_path / "child.err")

    def child():
        reg, c = held["reg"], held["counter"]
        c.inc(100)  # the child's own copy
        assert c.value == 103
        with pytest.raises(cachemeter.StateError) as e:
            reg.flush()
        assert e.value.status == cachemeter._core.CM_ESTATE and e.value.name == "CM_ESTATE"
        reg.close()
        del reg, c
        done = threading.Event()

        def free():
            held.clear()  # the last references: cm_registry_free runs here
            gc.collect()
            done.set()

        threading.Thread(target=free, daemon=True).start()
        assert done.wait(BOUND), "freeing the registry in the child hung"

    pid = fork_child(child, errfile)
    wait_child(pid, errfile)
    reg, c = held["reg"], held["counter"]
    c.inc(1)
    reg.flush()
    reg.close()
    held.clear()
    with cachemeter.Registry() as check:
        check.load(db)
        assert check.counter("persisted", "Persisted.").value == 4  # the parent's, not the child's 103


# ---- the binding's own locks
def test_child_of_a_thread_holding_the_bindings_locks(registry, tmp_path):
    """A thread of the parent inside Registry.counter() or Family.labels()
    when another forks (the interpreter may switch threads there) holds the
    registry's or the family's lock in the child, where that thread does not
    exist. The child creates families and series anyway (it has fresh locks);
    the parent's locks are untouched."""
    fam = registry.counter("held_fam", "Held.", labels=("k",))
    cachemeter.Registry.default()
    held, release = threading.Event(), threading.Event()

    def holder():
        with registry._lock, fam._lock, cachemeter.Registry._default_lock:
            held.set()
            release.wait(CHILD_BOUND)

    t = threading.Thread(target=holder)
    t.start()
    errfile = str(tmp_path / "child.err")
    try:
        assert held.wait(BOUND)

        def child():
            done = threading.Event()

            def body():
                fam.labels("child").inc()
                registry.counter("new_in_child", "New.").inc()
                assert cachemeter.Registry.default() is not None
                done.set()

            threading.Thread(target=body, daemon=True).start()
            assert done.wait(BOUND), "a lock held by a thread of the parent blocked the child"
            assert 'held_fam_total{k="child"} 1' in registry.render()

        pid = fork_child(child, errfile)
        wait_child(pid, errfile)
        assert registry._lock.locked() and fam._lock.locked()  # the parent's: still the holder's
    finally:
        release.set()
        t.join(CHILD_BOUND)
    fam.labels("parent").inc()
    assert "new_in_child" not in registry.render()
