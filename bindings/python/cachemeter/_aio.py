# SPDX-License-Identifier: Apache-2.0
"""asyncio for caches and ``@cached`` (issue 17): what never blocks the event
loop, and single flight among tasks.

- Lookups on a ``memory://`` cache run inline (a hit is a few hundred ns and
  never waits for a load: the C side looks it up keeping the GIL). Everything
  that may do I/O (a remote backend's get, set, delete, a load through the
  backend's single flight) runs in this module's thread pool
  (``run_in_executor``), never on the loop.
- Single flight among tasks: concurrent awaits of one key in one event loop
  share one load, which runs in a task of its own; the callers await it
  shielded, so a cancelled caller (the one that started it included) never
  cancels the load nor leaves the others waiting: they get its result or
  its exception. A load nobody awaits any more still finishes and stores its
  value.
- Across threads and processes, a load goes through the cache's own
  ``get_or_load`` (its single flight and, on Redis, the cross-process lock)
  in a pool thread, whose loader runs the coroutine on the event loop
  (``run_coroutine_threadsafe``) and waits for it.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable, Dict, Hashable, Optional, Tuple

_POOL_THREADS = 64  # loads in flight at once per process (each waits on its coroutine)
_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
_pool_lock = threading.Lock()


def pool() -> concurrent.futures.ThreadPoolExecutor:
    """The thread pool of cachemeter's blocking calls from asyncio."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=_POOL_THREADS,
                                                          thread_name_prefix="cachemeter-aio")
        return _pool


async def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in the pool, awaited."""
    return await asyncio.get_running_loop().run_in_executor(pool(), fn, *args)


class Flights:
    """Single flight among the tasks of each event loop: one task per key."""

    def __init__(self) -> None:
        self._tasks: Dict[Tuple[int, Hashable], "asyncio.Task[Any]"] = {}

    async def run(self, key: Hashable, start: Callable[[], Awaitable[Any]]) -> Any:
        return (await self.run_started(key, start))[0]

    async def run_started(self, key: Hashable, start: Callable[[], Awaitable[Any]]) -> Tuple[Any, bool]:
        """(the load's result, whether this call started it)."""
        loop = asyncio.get_running_loop()
        k = (id(loop), key)
        task = self._tasks.get(k)
        started = task is None or task.get_loop() is not loop
        if started:
            task = loop.create_task(start())
            self._tasks[k] = task

            def forget(t: "asyncio.Task[Any]", k: Tuple[int, Hashable] = k) -> None:
                if self._tasks.get(k) is t:
                    del self._tasks[k]
                if not t.cancelled():
                    t.exception()  # retrieved: no "never retrieved" warning when nobody waits

            task.add_done_callback(forget)
        return await asyncio.shield(task), started


def bridge_loader(loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[Any]],
                  encode: Callable[[Any], Any], got: list) -> Callable[[Any], Any]:
    """A loader for Cache.get_or_load run in a pool thread: runs make() on
    loop, waits for it, appends its result to got, returns encode(result)."""

    def loader(_key: Any) -> Any:
        result = asyncio.run_coroutine_threadsafe(make(), loop).result()
        got.append(result)
        return encode(result)

    return loader
