#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/bench_async.py: an async @cachemeter.cached hit vs a sync one vs the
pattern common async cache decorators use (a dict guarded by an
asyncio.Lock), in one interpreter, interleaved rounds, best round.

Run: PYTHONPATH=<build>/bindings/python /usr/bin/python3 bench/bench_async.py [--rounds N]
"""
from __future__ import annotations

import argparse
import asyncio
import time

import cachemeter

N = 100_000
KEYS = list(range(100))


def dict_lock_cached(fn):
    """The baseline: one dict and one asyncio.Lock (as aiocache-style
    decorators do to keep concurrent misses from all running fn)."""
    cache, lock = {}, asyncio.Lock()

    async def wrapper(*args):
        async with lock:
            if args in cache:
                return cache[args]
        value = await fn(*args)
        async with lock:
            cache[args] = value
        return value

    return wrapper


async def work_async(x):
    return {"x": x, "tags": ["a", "b"]}


def work_sync(x):
    return {"x": x, "tags": ["a", "b"]}


async def main(rounds: int) -> None:
    reg = cachemeter.Registry()
    ours_async = cachemeter.cached(registry=reg, name="bench.async")(work_async)
    ours_sync = cachemeter.cached(registry=reg, name="bench.sync")(work_sync)
    base = dict_lock_cached(work_async)
    for k in KEYS:  # warm: every timed call is a hit
        await ours_async(k)
        ours_sync(k)
        await base(k)

    async def t_async():
        f = ours_async
        for i in range(N):
            await f(KEYS[i % 100])

    async def t_sync():
        f = ours_sync
        for i in range(N):
            f(KEYS[i % 100])

    async def t_base():
        f = base
        for i in range(N):
            await f(KEYS[i % 100])

    best = {"async @cached hit": float("inf"), "sync @cached hit": float("inf"),
            "dict + asyncio.Lock hit": float("inf")}
    for _ in range(rounds):
        for name, fn in (("async @cached hit", t_async), ("sync @cached hit", t_sync),
                         ("dict + asyncio.Lock hit", t_base)):
            t0 = time.perf_counter()
            await fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    ns = {k: v / N * 1e9 for k, v in best.items()}
    print(f"best of {rounds} interleaved rounds of {N} hits:")
    for k, v in ns.items():
        print(f"  {k:26s} {v:8.1f} ns")
    print(f"async @cached / sync @cached: {ns['async @cached hit'] / ns['sync @cached hit']:.2f}x")
    print(f"async @cached / dict + asyncio.Lock: {ns['async @cached hit'] / ns['dict + asyncio.Lock hit']:.2f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    asyncio.run(main(ap.parse_args().rounds))
