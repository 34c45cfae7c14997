# SPDX-License-Identifier: Apache-2.0
"""asyncio (issue 17, item 2): @cached on async def, single flight among
tasks and across threads, exceptions and cancellation, the event loop never
blocked, the async Cache API, and sync and async calls sharing metrics."""
from __future__ import annotations

import asyncio
import threading

import pytest

import cachemeter
from conftest import BOUND, needs_redis


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, BOUND * 3))


def test_one_hundred_tasks_on_one_key_run_the_coroutine_once(registry):
    runs = []
    events = {}

    @cachemeter.cached(registry=registry)
    async def load(x):
        runs.append(x)
        await events["started"].wait()  # every task is waiting before the load finishes
        return {"x": x, "v": [1, 2]}

    async def main():
        started = events["started"] = asyncio.Event()
        tasks = [asyncio.create_task(load(7)) for _ in range(100)]
        while len(runs) == 0:
            await asyncio.sleep(0)
        started.set()
        return await asyncio.gather(*tasks)

    got = run(main())
    assert got == [{"x": 7, "v": [1, 2]}] * 100
    assert runs == [7]
    m = load.metrics()
    assert (m["misses"], m["hits"], m["errors"]) == (1, 99, 0)
    assert inspect_is_coroutine_function(load)
    assert run(load(7)) == {"x": 7, "v": [1, 2]} and load.metrics()["hits"] == 100


def inspect_is_coroutine_function(f) -> bool:
    import inspect
    return inspect.iscoroutinefunction(f)


def test_a_raising_coroutine_fails_every_waiter_once_and_caches_nothing(registry):
    runs = []

    @cachemeter.cached(registry=registry)
    async def boom(x):
        runs.append(x)
        await asyncio.sleep(0)
        raise LookupError(f"no {x}")

    async def main():
        return await asyncio.gather(*[boom(1) for _ in range(100)], return_exceptions=True)

    got = run(main())
    assert all(isinstance(e, LookupError) and str(e) == "no 1" for e in got), got
    assert runs == [1]
    assert boom.metrics()["errors"] == 1
    with pytest.raises(LookupError):
        run(boom(1))
    assert runs == [1, 1]  # nothing was cached


def test_cancelling_the_leader_neither_cancels_the_load_nor_hangs_the_waiters(registry):
    runs = []
    events = {}

    @cachemeter.cached(registry=registry)
    async def slow(x):
        runs.append(x)
        await events["release"].wait()
        return x + 1

    async def main():
        release = events["release"] = asyncio.Event()
        leader = asyncio.create_task(slow(1))
        while not runs:
            await asyncio.sleep(0)
        waiters = [asyncio.create_task(slow(1)) for _ in range(10)]
        await asyncio.sleep(0)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        release.set()
        return await asyncio.gather(*waiters)

    assert run(main()) == [2] * 10
    assert runs == [1]
    assert run(slow(1)) == 2 and runs == [1]  # the load's value was stored


def test_loops_in_two_threads_share_one_load(registry):
    runs = []
    both_waiting = threading.Barrier(2, timeout=BOUND)
    release = threading.Event()

    @cachemeter.cached(registry=registry)
    async def shared(x):
        runs.append(threading.current_thread().name)
        await asyncio.get_running_loop().run_in_executor(None, release.wait, BOUND)
        return x * 3

    results = []

    def worker():
        async def main():
            both_waiting.wait()
            return await shared(5)
        results.append(asyncio.run(main()))

    threads = [threading.Thread(target=worker, name=f"loop{i}") for i in range(2)]
    for t in threads:
        t.start()
    # The first load is running; the other thread's call waits for it in
    # get_or_load's single flight (it cannot run: it would append to runs).
    deadline = threading.Event()
    while not runs and not deadline.wait(0.005):
        pass
    release.set()
    for t in threads:
        t.join(BOUND)
    assert results == [15, 15]
    assert len(runs) == 1, runs
    m = shared.metrics()
    assert (m["misses"], m["hits"]) == (1, 1)


def test_sync_and_async_calls_share_the_metrics_families(registry):
    @cachemeter.cached(registry=registry, name="mix.sync")
    def f(x):
        return x

    @cachemeter.cached(registry=registry, name="mix.async")
    async def g(x):
        return x

    f(1)
    f(1)
    run(g(1))
    run(g(1))
    text = registry.render()
    for fn in ("mix.sync", "mix.async"):
        assert f'cachemeter_cached_calls_total{{function="{fn}",result="hit"}} 1' in text, text
        assert f'cachemeter_cached_calls_total{{function="{fn}",result="miss"}} 1' in text
        assert f'cachemeter_cache_hits_total{{cache="{fn}",backend="memory"}} 1' in text


def test_async_cache_api_on_memory(registry):
    async def main():
        with cachemeter.Cache("memory://", "amem", registry=registry) as c:
            assert await c.aget("k") is None
            await c.aset("k", b"v", ttl=60)
            assert await c.aget("k") == b"v"
            assert await c.adelete("k") is True
            calls = []

            async def loader(key):
                calls.append(key)
                await asyncio.sleep(0)
                return b"loaded:" + key

            got = await asyncio.gather(*[c.aget_or_load(b"z", loader) for _ in range(50)])
            assert got == [b"loaded:z"] * 50 and calls == [b"z"]
            assert await c.aget_or_load("z", loader) == b"loaded:z" and len(calls) == 1
            assert await c.aget_or_load("w", lambda key: b"sync:" + key.encode()) == b"sync:w"  # the key as given
            return c.stats()

    stats = run(main())
    assert stats["hits"] >= 2


@needs_redis
def test_remote_io_never_blocks_the_loop(registry, redis_socket):
    # The loader (a plain function: it runs in the pool) waits until a task
    # on the loop has run: were the lookup or the load on the loop, that task
    # could not run and the loader would give up after BOUND.
    async def main():
        with cachemeter.Cache(f"redis+unix://{redis_socket}?namespace=aio", "aredis", registry=registry) as c:
            await c.aset("k", b"v")
            assert await c.aget("k") == b"v"
            loop_ran = threading.Event()

            def loader(key):
                if not loop_ran.wait(BOUND):
                    raise RuntimeError("the event loop was blocked")
                return b"from-loader"

            async def ticker():
                loop_ran.set()

            load = asyncio.create_task(c.aget_or_load("missing", loader))
            await asyncio.sleep(0)
            await ticker()
            assert await load == b"from-loader"
            assert await c.adelete("k") is True
            assert await c.aget("k") is None

            runs = []

            @cachemeter.cached(cache=c)
            async def remote(x):
                runs.append(x)
                await asyncio.sleep(0)
                return [x, "r"]

            got = await asyncio.gather(*[remote(4) for _ in range(20)])
            assert got == [[4, "r"]] * 20 and runs == [4]
            assert await remote(4) == [4, "r"] and runs == [4]

    run(main())


@needs_redis
def test_two_processes_run_an_async_load_once_through_the_redis_lock(tmp_path, redis_socket):
    # Process A starts the load and holds it until the file "go" exists;
    # process B calls while it is held (the test creates "go" only once B
    # said it is calling): B waits on the Redis lock and gets A's value.
    script = tmp_path / "proc.py"
    script.write_text(f"""
import asyncio, os, sys, cachemeter
d = sys.argv[1]
role = sys.argv[2]
ran = []

@cachemeter.cached(cache="redis+unix://{redis_socket}?namespace=alock&load_timeout_ms=30000", name="alock.f")
async def f(x):
    ran.append(x)
    open(os.path.join(d, "started"), "w").close()
    while not os.path.exists(os.path.join(d, "go")):
        await asyncio.sleep(0.005)
    return {{"x": x, "by": role}}

async def main():
    if role == "B":
        open(os.path.join(d, "calling"), "w").close()
    return await f(1)

print(role, asyncio.run(main())["by"], len(ran))
""")
    import subprocess
    import sys as _sys
    import time

    def wait_file(name):
        deadline = time.monotonic() + BOUND * 3
        while not (tmp_path / name).exists():
            assert time.monotonic() < deadline, f"{name} never appeared"
            time.sleep(0.005)

    a = subprocess.Popen([_sys.executable, str(script), str(tmp_path), "A"], stdout=subprocess.PIPE, text=True)
    wait_file("started")
    b = subprocess.Popen([_sys.executable, str(script), str(tmp_path), "B"], stdout=subprocess.PIPE, text=True)
    wait_file("calling")
    (tmp_path / "go").touch()
    out_a, _ = a.communicate(timeout=BOUND * 3)
    out_b, _ = b.communicate(timeout=BOUND * 3)
    assert a.returncode == 0 and b.returncode == 0, (out_a, out_b)
    assert out_a.split() == ["A", "A", "1"]
    assert out_b.split() == ["B", "A", "0"]  # A's value; B's coroutine never ran
