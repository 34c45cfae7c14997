# SPDX-License-Identifier: Apache-2.0
"""``Cache``: a named cache handle over a backend URI (``cm_cache``), every
operation counted and timed in a registry.

Keys and values are bytes; ``str`` is accepted and stored as UTF-8 (and so
is any contiguous buffer); ``get`` returns bytes. TTLs are seconds (float).

The GIL: ``memory://`` operations keep it (a memory get is ~60 ns of C,
cheaper than handing the GIL over and taking it back, and it never waits on
anything that needs Python), ``get_or_load``'s hits included; every other
backend releases it around each call, and ``get_or_load`` always does on a
miss (it may wait for another caller's load).
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import json
import math
from types import TracebackType
from typing import Any, Callable, Dict, Optional, Type, Union

from . import _aio, _core
from ._errors import InvalidArgument, StateError, Unavailable
from ._metrics import Registry

__all__ = ["Cache", "Key", "Value"]

Key = Union[bytes, str, bytearray, memoryview]
Value = Union[bytes, str, bytearray, memoryview]
_MAX_TTL_MS = 1 << 62


def _ttl_ms(ttl: Optional[float]) -> int:
    """Seconds to the C API's ttl_ms: None -> 0 (the cache's default ttl_ms),
    math.inf -> -1 (never expires), else at least 1 ms."""
    if ttl is None:
        return 0
    if ttl == math.inf:
        return -1
    if not ttl > 0:  # also NaN
        raise InvalidArgument(f"ttl must be > 0 seconds, None (the cache's default) or math.inf (never), not {ttl!r}")
    return min(max(1, round(ttl * 1000)), _MAX_TTL_MS)


def _closed(*args: Any, **kwargs: Any) -> Any:
    raise StateError("the cache is closed")


class Cache:
    """A cache handle: ``Cache("memory://?max_entries=10000&ttl_ms=30000", "users")``.

    ``uri`` chooses the backend (``memory://``, ``sqlite:///path.db``,
    ``redis://host:port/db``; options in the README); ``name`` becomes the
    ``cache`` label of its metrics; ``registry`` records them (None: the
    default registry). Handles with the same name on one registry share
    their series.

    Use it as a context manager, or call ``close()``: the C handle is closed
    as soon as no call is using it (a call running in another thread, a
    ``@cached`` function bound to it) -- never under a running call.
    """

    def __init__(self, uri: str, name: str, registry: Optional[Registry] = None) -> None:
        reg = registry if registry is not None else Registry.default()
        self._bind(_core.cm_cache_open(reg._handle(), name, uri), reg, name, uri)

    @classmethod
    def tiered(cls, l1: str, l2: str, name: str, registry: Optional[Registry] = None) -> "Cache":
        """A two-tier cache (``cm_cache_open_tiered``): a memory L1 in this process
        (``l1``: ``memory://``) in front of a shared L2 (``l2``: ``redis://`` or
        ``sqlite://``, carrying the cache's options). Raises ``Unavailable``
        when the loaded library has no tiered caches."""
        open_tiered = getattr(_core, "cm_cache_open_tiered", None)
        if open_tiered is None:
            raise Unavailable("this build of cachemeter has no cm_cache_open_tiered (two-tier caches)")
        reg = registry if registry is not None else Registry.default()
        self = cls.__new__(cls)
        self._bind(open_tiered(reg._handle(), name, l1, l2), reg, name, f"tiered:{l1}|{l2}")
        return self

    def _bind(self, handle: Any, registry: Registry, name: str, uri: str) -> None:
        registry._hold(handle)
        self._h: Any = handle
        self.registry = registry
        """The registry holding this cache's metrics."""
        self.name = name
        self.uri = uri
        memory = uri[:9].lower() == "memory://"
        self._local = memory  # a hit never blocks: get_or_load looks it up keeping the GIL
        self._flights = _aio.Flights()  # aget_or_load's single flight among tasks
        get, set_, delete = ((_core.cache_get_gil, _core.cache_set_gil, _core.cache_delete_gil) if memory
                             else (_core.cm_cache_get, _core.cm_cache_set, _core.cm_cache_delete))
        # The hot calls, bound to the handle (one C call, no Python frame for get).
        self.get: Callable[[Key], Optional[bytes]] = functools.partial(get, handle)
        self._set = functools.partial(set_, handle)
        self._delete = functools.partial(delete, handle)

    def _handle(self) -> Any:
        h = self._h
        if h is None:
            raise StateError("the cache is closed")
        return h

    # ---- operations
    def get(self, key: Key) -> Optional[bytes]:  # replaced by the bound C call in _bind
        """The value of key, or None when absent or expired."""
        raise StateError("the cache is closed")

    def set(self, key: Key, value: Value, ttl: Optional[float] = None) -> None:
        """Stores value under key. ``ttl``: seconds; None: the cache's default
        (``ttl_ms`` in the URI; entries never expire without it); ``math.inf``:
        never expires. ``LimitExceeded`` for an entry over ``max_entry_bytes``."""
        self._set(key, value, 0 if ttl is None else _ttl_ms(ttl))

    def delete(self, key: Key) -> bool:
        """Removes key; True when it was there."""
        return self._delete(key) == 0

    def clear(self) -> None:
        """Removes every entry (not counted as evictions)."""
        _core.cm_cache_clear(self._handle())

    def get_or_load(self, key: Key, fn: Callable[[Any], Optional[Value]], ttl: Optional[float] = None
                    ) -> Optional[bytes]:
        """The value of key; on a miss ``fn(key)`` loads it (bytes or str; None:
        no such value, nothing cached, returns None) and it is cached with
        ``ttl`` (as for ``set``).

        Single flight: concurrent callers missing the same key wait for the
        one load in progress (for at most the cache's ``load_timeout_ms``, then
        ``Timeout``). An exception raised by ``fn`` propagates to this caller;
        the callers waiting for that load get ``BackendError`` (or the status of
        a ``cachemeter.Error`` that ``fn`` raised). ``fn`` must not call
        ``get_or_load`` for the same key on the same cache."""
        return _core.get_or_load(self._handle(), key, fn, _ttl_ms(ttl), self._local)

    # ---- asyncio (cachemeter/_aio.py: what runs where, single flight among tasks)
    async def aget(self, key: Key) -> Optional[bytes]:
        """``get`` for asyncio: inline on a ``memory://`` cache (never blocks),
        else in cachemeter's thread pool."""
        if self._local:
            return self.get(key)
        return await _aio.off_loop(self.get, key)

    async def aset(self, key: Key, value: Value, ttl: Optional[float] = None) -> None:
        """``set`` for asyncio (as ``aget``)."""
        if self._local:
            return self.set(key, value, ttl)
        await _aio.off_loop(self.set, key, value, ttl)

    async def adelete(self, key: Key) -> bool:
        """``delete`` for asyncio (as ``aget``)."""
        if self._local:
            return self.delete(key)
        return await _aio.off_loop(self.delete, key)

    async def aget_or_load(self, key: Key, loader: Callable[[Any], Any], ttl: Optional[float] = None
                           ) -> Optional[bytes]:
        """``get_or_load`` for asyncio: ``loader(key)`` may be a coroutine
        function (run on this event loop) or a plain one (run in the pool).

        A hit on a ``memory://`` cache is looked up inline. Concurrent awaits of
        one key in one event loop share one load (a cancelled caller does not
        cancel it or hang the others); the load goes through the cache's
        ``get_or_load`` in a pool thread, so its single flight across threads
        and, on Redis, its cross-process lock apply too. The loader's exception
        reaches the awaiting callers."""
        handle = self._handle()
        if self._local:
            hit = _core.cache_get_hit_gil(handle, key)
            if hit is not None:
                return hit
        loop = asyncio.get_running_loop()
        ttl_ms = _ttl_ms(ttl)
        is_async = inspect.iscoroutinefunction(loader)

        async def load() -> Optional[bytes]:
            got: list = []
            if is_async:
                fn = _aio.bridge_loader(loop, lambda: loader(key), lambda v: v, got)
            else:
                fn = loader
            return await _aio.off_loop(_core.get_or_load, handle, key, fn, ttl_ms, 0)

        return await self._flights.run(bytes(key, "utf-8") if isinstance(key, str) else bytes(key), load)

    def stats(self) -> Dict[str, Any]:
        """This cache's statistics (``cm_cache_stats_json``, schema in
        docs/metrics.md): hits, misses, hit_ratio, entries, bytes, evictions,
        per-operation p50/p99 latency, hit ratio over 1m/5m/1h."""
        return json.loads(_core.cm_cache_stats_json(self._handle()))

    def reset_stats(self) -> None:
        """Zeroes this cache's metric series (entries stay)."""
        _core.cm_cache_reset_stats(self._handle())

    # ---- mapping conveniences (each is a counted get, set or delete)
    def __contains__(self, key: Key) -> bool:
        return self.get(key) is not None

    def __getitem__(self, key: Key) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Key, value: Value) -> None:
        self.set(key, value)

    def __delitem__(self, key: Key) -> None:
        if not self.delete(key):
            raise KeyError(key)

    # ---- lifetime
    @property
    def closed(self) -> bool:
        return self._h is None

    def close(self) -> None:
        """Closes the cache (idempotent); later calls raise ``StateError``. The C
        handle closes as soon as no running call or ``@cached`` function uses it."""
        self._h = None
        self.get = self._set = self._delete = _closed  # drop the bound handle

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<cachemeter.Cache {self.name!r} {self.uri!r}{' closed' if self._h is None else ''}>"
