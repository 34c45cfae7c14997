# SPDX-License-Identifier: Apache-2.0
"""``@cached``: memoize a function in a cachemeter cache, with per-function
metrics.

Keys: ``<module>.<qualname>`` NUL, a tag byte, then the arguments: ``marshal``
(format 2, deterministic, core types only: None, bool, int, float, complex,
str, bytes, and tuples/lists/dicts/sets of them -- no subclasses) when it
can, else ``pickle`` (protocol 5: any picklable argument, unhashable ones
included, and ``self`` of a method by its state). The arguments are bound
first as ``inspect.signature(fn).bind()`` binds them: ``f(1, 2)``,
``f(1, b=2)`` and ``f(b=2, a=1)`` are one entry (defaults are not filled in:
``f(1)`` and ``f(1, b=<default>)`` are two). Equal arguments that encode
differently (``f(1)`` and ``f(1.0)``) are separate entries: a miss, never a
wrong hit. A ``key=`` callable replaces all this: ``key(*args, **kwargs)``
returns bytes or str. Calls with arguments of the core types (ints within
64 bits, nested at most 31 deep), positional or naming positional
parameters as keywords without a gap, are encoded in C, to the same bytes;
the rest here (``slow_key``).

Values (the serializer rule: a value read back from a cache never runs
code unless the user opted in to that trust):

- default (``serializer=None``): marshal format 2 (written and read in C)
  for results of the core types: None, bool, int within 64 bits, float,
  str, bytes, and tuples, lists and dicts of them. The decoder builds
  nothing else, so a value another process wrote cannot run code. A result
  of any other type is a ``TypeError`` at store time naming ``serializer=``.
- ``serializer="pickle"`` with ``secret=`` (or the ``CACHEMETER_SECRET``
  environment variable): the core types as above, ``pickle`` (protocol 5)
  for the rest, and every value signed with HMAC-SHA256 in a 42-byte header
  (``_Sealer``); a value whose tag does not verify is never unpickled.
- ``serializer="pickle-unsafe"``: the same without signatures, for
  ``memory://`` caches only (no other process can write there).
- ``serializer=`` an object with ``dumps``/``loads`` (``json``): its
  ``loads`` gets what the backend holds; it must be safe on hostile bytes
  (the ``pickle`` module itself counts as ``"pickle"``).
- ``secret=`` with any serializer signs its values too.

A value read back that does not verify (``unverified``) or decode
(``undecodable``: not the codec's, a pickle that no longer loads) is
refused: counted in ``<prefix>cached_rejected_values_total{function,
reason}``, never decoded further; the function runs and its result
overwrites it. A hit returns a new object each time, as pickle does:
mutating a result never changes the cached value. None results are cached.

The wrapper is a C callable (``_core.CachedFunction``): on a ``memory://``
cache a hit keeps the GIL (it never waits for a load); a miss, and every
call on another backend, releases it around ``cm_cache_get_or_load``.

Metrics: the counter ``<prefix>cached_calls_total{function, result}`` in the
cache's registry, where result is ``hit`` (the function did not run for this
call: a cached value, or another caller's load it waited for), ``miss`` (it
ran and returned) or ``error`` (it raised). ``fn.metrics()`` reads them.
"""
from __future__ import annotations

import asyncio
import collections.abc
import functools
import hmac
import inspect
import marshal
import os
import pickle
import sys
from typing import Any, Callable, Dict, Optional, Sequence, TypeVar, Union, overload

from . import _aio, _core
from ._cache import Cache, _ttl_ms
from ._errors import InvalidArgument
from ._metrics import Registry

__all__ = ["cached"]

_F = TypeVar("_F", bound=Callable[..., Any])
_CACHE_NAME_MAX = 200  # bytes of UTF-8, the C API's limit on a cache name


_MODE_USER, _MODE_CODEC, _MODE_PICKLE = 0, 1, 2  # cmpy.h: CMPY_SER_USER, _CODEC, _PICKLE
_SECRET_ENV = "CACHEMETER_SECRET"
_SECRET_MIN = 16  # bytes: a shorter HMAC key could be guessed offline from one signed value
Secret = Union[bytes, str]


def _cache_name(qualname: str) -> str:
    return qualname.encode("utf-8")[:_CACHE_NAME_MAX].decode("utf-8", "ignore") or "cached"


class _Sealer:
    """Signs values with HMAC-SHA256 and checks them before anything decodes them.

    A sealed value is a 42-byte header then the payload::

        0      1 byte   0xC5, the magic (neither the codec nor pickle writes it first)
        1      1 byte   0x01, the header's version
        2      8 bytes  key id: HMAC-SHA256(secret, b"cachemeter key id")[:8]
        10     32 bytes tag: HMAC-SHA256(secret, bytes 0..9 || len(key) as 4 bytes
                        big-endian || key || payload)
        42     ...      payload: codec bytes, or a pickle (first byte 0x80)

    The tag covers the cache key (function name and arguments), so a signed
    value cannot be moved to another key. Several secrets: the first signs,
    every one verifies (rotation: add the new one first, drop the old one
    once the entries it signed have expired)."""

    __slots__ = ("_sign_head", "_sign_key", "_keys")
    MAGIC = b"\xc5\x01"
    HEADER = 42

    def __init__(self, secrets: Sequence[bytes]) -> None:
        self._keys = {self.key_id(k): k for k in reversed(secrets)}
        self._sign_key = secrets[0]
        self._sign_head = self.MAGIC + self.key_id(secrets[0])

    @staticmethod
    def key_id(secret: bytes) -> bytes:
        return hmac.digest(secret, b"cachemeter key id", "sha256")[:8]

    def seal(self, key: bytes, payload: bytes) -> bytes:
        head = self._sign_head
        tag = hmac.digest(self._sign_key, b"".join((head, len(key).to_bytes(4, "big"), key, payload)), "sha256")
        return b"".join((head, tag, payload))

    def unseal(self, key: bytes, value: bytes) -> Optional[bytes]:
        """The payload, or None when value is not sealed by one of the secrets for key."""
        if len(value) < self.HEADER or value[:2] != self.MAGIC:
            return None
        secret = self._keys.get(value[2:10])
        if secret is None:
            return None
        payload = value[self.HEADER:]
        tag = hmac.digest(secret, b"".join((value[:10], len(key).to_bytes(4, "big"), key, payload)), "sha256")
        return payload if hmac.compare_digest(tag, value[10:self.HEADER]) else None


def _secrets(secret: Union[Secret, Sequence[Secret], None], env: bool) -> Optional[list]:
    """secret= as a list of keys (the first signs), else CACHEMETER_SECRET
    when env, else None."""
    if secret is None and env:
        raw = os.environb.get(_SECRET_ENV.encode()) if os.supports_bytes_environ else None
        if raw is None and os.environ.get(_SECRET_ENV) is not None:
            raw = os.environ[_SECRET_ENV].encode("utf-8")
        secret = raw or None
        where = f"the environment variable {_SECRET_ENV}"
    else:
        where = "secret="
    if secret is None:
        return None
    if isinstance(secret, (bytes, bytearray, str)):
        items = [secret]
    elif isinstance(secret, collections.abc.Sequence):
        items = list(secret)
    else:
        raise TypeError(f"@cached: {where} must be bytes or str (or a sequence of them), not {type(secret).__name__}")
    keys = []
    for s in items:
        if isinstance(s, str):
            s = s.encode("utf-8")
        if not isinstance(s, (bytes, bytearray)):
            raise TypeError(f"@cached: {where} must be bytes or str (or a sequence of them), not {type(s).__name__}")
        if len(s) < _SECRET_MIN:
            raise InvalidArgument(f"@cached: {where} must be at least {_SECRET_MIN} bytes (secrets.token_bytes(32) "
                                  f"makes one), not {len(s)}")
        keys.append(bytes(s))
    if not keys:
        raise InvalidArgument(f"@cached: {where} is empty")
    return keys


def _serializer(serializer: Any, secret: Any, local: bool, qualname: str, uri: str) -> tuple:
    """(mode, dumps, loads, sealer or None) for serializer= and secret=; refuses
    what would let a cache's value run code without the user's opt-in."""
    if serializer is pickle or getattr(serializer, "loads", None) in (pickle.loads, getattr(pickle, "_loads", None)):
        serializer = "pickle"
    if serializer is None:
        keys = _secrets(secret, env=False)
        return _MODE_CODEC, None, None, _Sealer(keys) if keys else None
    if serializer == "pickle":
        keys = _secrets(secret, env=True)
        if keys is None:
            raise InvalidArgument(
                f"@cached {qualname}: serializer=\"pickle\" needs a secret: pickle runs code chosen by whoever "
                f"wrote the value, so values are signed (HMAC-SHA256) and checked before unpickling; pass "
                f"secret=b\"...\" (at least {_SECRET_MIN} bytes) or set {_SECRET_ENV}, or use "
                f"serializer=\"pickle-unsafe\" on a memory:// cache")
        return _MODE_PICKLE, functools.partial(pickle.dumps, protocol=5), pickle.loads, _Sealer(keys)
    if serializer == "pickle-unsafe":
        if secret is not None:
            raise InvalidArgument(f"@cached {qualname}: serializer=\"pickle-unsafe\" is unsigned; with a secret, "
                                  "use serializer=\"pickle\"")
        if not local:
            raise InvalidArgument(
                f"@cached {qualname}: serializer=\"pickle-unsafe\" is for memory:// caches only, not "
                f"{uri.split(':', 1)[0]}: "
                f"another process can write to this cache, and unpickling its value would run its code; use "
                f"serializer=\"pickle\" with secret=")
        return _MODE_PICKLE, functools.partial(pickle.dumps, protocol=5), pickle.loads, None
    if isinstance(serializer, str):
        raise InvalidArgument(f"@cached {qualname}: unknown serializer {serializer!r}: expected None, \"pickle\", "
                              "\"pickle-unsafe\" or an object with dumps/loads")
    if not callable(getattr(serializer, "dumps", None)) or not callable(getattr(serializer, "loads", None)):
        raise TypeError(f"@cached {qualname}: serializer= must have dumps() and loads(), not {serializer!r}")
    keys = _secrets(secret, env=False)
    return _MODE_USER, serializer.dumps, serializer.loads, _Sealer(keys) if keys else None


@overload
def cached(fn: _F) -> _F: ...


@overload
def cached(fn: None = None, *, cache: Union[Cache, str, None] = None, ttl: Optional[float] = None,
           key: Optional[Callable[..., Union[bytes, str]]] = None, serializer: Any = None,
           secret: Union[Secret, Sequence[Secret], None] = None, registry: Optional[Registry] = None,
           name: Optional[str] = None) -> Callable[[_F], _F]: ...


def cached(fn: Optional[Callable[..., Any]] = None, *, cache: Union[Cache, str, None] = None,
           ttl: Optional[float] = None, key: Optional[Callable[..., Union[bytes, str]]] = None,
           serializer: Any = None, secret: Union[Secret, Sequence[Secret], None] = None,
           registry: Optional[Registry] = None, name: Optional[str] = None) -> Any:
    """Caches a function's results in a cachemeter cache.

    ``@cached`` or ``@cached(cache=..., ttl=..., key=..., serializer=...)``:

    - ``cache``: a ``Cache``, a URI (a cache of that URI named after the
      function), or None: a ``memory://`` cache of its own, named after the
      function, in ``registry`` (None: the default registry).
    - ``ttl``: seconds (None: the cache's default; ``math.inf``: never).
    - ``key``: ``key(*args, **kwargs) -> bytes | str`` replacing the
      argument encoding (the function's name is still prepended).
    - ``serializer``: None (the default: core types only, a ``TypeError``
      for other results), ``"pickle"`` (needs ``secret``), ``"pickle-unsafe"``
      (``memory://`` caches only), or an object with ``dumps``/``loads``.
    - ``secret``: bytes or str of at least 16 bytes, or a sequence of them
      (the first signs, all verify): values are signed with HMAC-SHA256 and
      a value that does not verify is a miss. ``serializer="pickle"`` takes
      ``CACHEMETER_SECRET`` from the environment when it is None.
    - ``name``: the function's name in keys and metrics (default
      ``module.qualname``).

    Concurrent callers with the same arguments run the function once
    (``get_or_load``); if it raises, its caller gets the exception and the
    callers waiting for it get ``BackendError``. Works on methods (``self``
    is part of the key, pickled by state: give ``key=`` for unpicklable
    instances). The wrapper has ``cache_clear()`` (clears its cache: the
    whole cache, so give each function its own when sharing matters),
    ``metrics()``, ``cache`` and ``__wrapped__``. Generator functions are
    refused with ``TypeError``: their results are not values.

    On an ``async def`` the wrapper is a coroutine function: a hit on a
    ``memory://`` cache is looked up inline; concurrent awaits of one key in
    an event loop share one run of the coroutine (a cancelled caller cancels
    neither the run nor the others' wait), which goes through the cache's
    single flight in cachemeter's thread pool (across threads and, on Redis,
    processes); remote lookups and stores never run on the loop. The keys,
    values and metrics are the sync calls' (cachemeter/_aio.py).
    """
    if fn is not None:
        return cached(cache=cache, ttl=ttl, key=key, serializer=serializer, secret=secret, registry=registry,
                      name=name)(fn)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            # Its result is a generator: not a value to store (and caching it
            # would hand one consumed object to every caller).
            raise TypeError(f"@cached cannot memoize {fn.__qualname__}: it returns a generator; "
                            "cache the values it produces instead")
        is_async = inspect.iscoroutinefunction(fn)
        qualname = name or f"{fn.__module__}.{fn.__qualname__}"
        uri = (cache or "memory://") if cache is None or isinstance(cache, str) else cache.uri
        local = uri[:9].lower() == "memory://"
        mode, dumps, loads, sealer = _serializer(serializer, secret, local, qualname, uri)
        if cache is None or isinstance(cache, str):
            c = Cache(uri, _cache_name(qualname), registry)
        else:
            c = cache
        reg = c.registry
        calls = reg.counter(reg.prefix + "cached_calls",
                            "Calls of @cached functions by result: hit (the function did not run for the "
                            "call), miss (it ran and returned), error (it raised).",
                            labels=("function", "result"))
        hit, miss, error = (calls.labels(qualname, r) for r in ("hit", "miss", "error"))
        rejected = reg.counter(reg.prefix + "cached_rejected_values",
                               "Values of @cached functions read from their cache and refused, by reason: "
                               "unverified (its HMAC tag did not verify), undecodable (the decoder refused it). "
                               "The function ran instead and its result replaced the value.",
                               labels=("function", "reason"))
        unverified = rejected.labels(qualname, "unverified") if sealer is not None else None
        undecodable = rejected.labels(qualname, "undecodable")
        ttl_ms = _ttl_ms(ttl)
        head = qualname.encode("utf-8") + b"\0"
        tag_args, tag_kwargs, tag_pickle, tag_user = head + b"a", head + b"k", head + b"p", head + b"u"
        handle = c._handle()
        mdumps, pdumps = marshal.dumps, pickle.dumps
        user_key = key

        # Keyword spellings of the same call share its entry: the C side keys
        # a call naming positional-or-keyword parameters as keywords as the
        # positional call (params); the rest is bound here as
        # inspect.signature(fn).bind() binds it.
        try:
            sig: Optional[inspect.Signature] = inspect.signature(fn)
        except (TypeError, ValueError):  # a builtin without a signature
            sig = None
        params = None
        if sig is not None:
            params = tuple(sys.intern(p.name) for p in sig.parameters.values()
                           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
            # positional-only parameters cannot be spelled as keywords
            npos_only = sum(1 for p in sig.parameters.values() if p.kind == p.POSITIONAL_ONLY)
            params = tuple("\0" if i < npos_only else n for i, n in enumerate(params))

        def slow_key(args: tuple, kwargs: Optional[dict]) -> bytes:
            """The key of a call the C encoder does not take: keyword arguments,
            a user key=, arguments outside its types (same bytes where it
            overlaps: marshal version 2)."""
            if user_key is not None:
                k = user_key(*args, **(kwargs or {}))
                return tag_user + (k.encode("utf-8") if isinstance(k, str) else bytes(k))
            if kwargs and sig is not None:
                try:
                    bound = sig.bind(*args, **kwargs)
                    args, kwargs = bound.args, bound.kwargs
                except TypeError:  # the call itself will raise it
                    pass
            try:
                return tag_kwargs + mdumps((args, kwargs), 2) if kwargs else tag_args + mdumps(args, 2)
            except ValueError:  # not marshallable: an object, a subclass, too deep
                pass
            try:
                return tag_pickle + pdumps((args, kwargs or {}), 5)
            except Exception as e:
                raise TypeError(f"@cached {qualname}: cannot build a key from its arguments ({e}); "
                                "pass key=... to @cached") from e

        series = (hit, miss, error, undecodable) + ((unverified,) if unverified is not None else ())
        wrapper = _core.cached_function(fn, handle, (handle,) + tuple(s._p for s in series), tag_args, ttl_ms,
                                        local, hit._p, miss._p, error._p, slow_key, dumps, loads, mode,
                                        user_key is not None, sealer.seal if sealer else None,
                                        sealer.unseal if sealer else None,
                                        unverified._p if unverified is not None else None, undecodable._p,
                                        params)

        def metrics() -> Dict[str, Any]:
            """This function's calls: hits, misses, errors, hit_ratio (hits over
            calls that did not raise; 0.0 before any), rejected (values read
            back and refused: unverified or undecodable), and its cache's name."""
            h, m, e = int(hit.value), int(miss.value), int(error.value)
            r = int(undecodable.value) + (int(unverified.value) if unverified is not None else 0)
            return {"function": qualname, "hits": h, "misses": m, "errors": e,
                    "hit_ratio": h / (h + m) if h + m else 0.0, "rejected": r, "cache": c.name}

        def cache_clear() -> None:
            """Empties the function's cache (all of it, if shared)."""
            _core.cm_cache_clear(handle)

        if is_async:
            # The C callable keys and encodes; the calls run here (_aio.py).
            wrapper = _async_wrapper(fn, wrapper, handle, local, ttl_ms, hit, miss, error, unverified, undecodable)
        functools.update_wrapper(wrapper, fn)
        wrapper.cache = c  # type: ignore[attr-defined]
        wrapper.cache_clear = cache_clear  # type: ignore[attr-defined]
        wrapper.metrics = metrics  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _async_wrapper(fn: Callable[..., Any], cf: Any, handle: Any, local: bool, ttl_ms: int, hit: Any, miss: Any,
                   error: Any, unverified: Any, undecodable: Any) -> Callable[..., Any]:
    """@cached on an ``async def`` (docs in cachemeter/_aio.py): a hit on a
    memory:// cache is looked up inline; a miss is one load per key among the
    tasks of a loop, run through the cache's get_or_load in a pool thread
    (single flight across threads and, on Redis, processes) whose loader runs
    the coroutine on the loop. The same keys, values and metrics as the sync
    calls (``hit``: the function did not run for this call)."""
    key_of, encode, decode = cf._key, cf._encode, cf._decode
    get_hit = _core.cache_get_hit_gil  # memory:// only: never waits, keeps the GIL
    flights = _aio.Flights()

    def refused(how: int) -> None:
        counter = unverified if how == 1 and unverified is not None else undecodable
        counter.inc()

    async def load(key: bytes, args: tuple, kwargs: dict) -> Any:
        loop = asyncio.get_running_loop()
        failed: list = []

        async def run() -> Any:
            try:
                return await fn(*args, **kwargs)
            except BaseException:
                failed.append(True)
                raise

        def store(result: Any) -> Any:
            try:
                return encode(key, result)
            except BaseException:
                failed.append(True)
                raise

        got: list = []
        try:
            data = await _aio.off_loop(_core.get_or_load, handle, key,
                                       _aio.bridge_loader(loop, run, store, got), ttl_ms, 0)
        except BaseException:
            if failed:
                error.inc()
            raise
        if got:  # it ran here
            miss.inc()
            return got[0]
        value, how = decode(key, data)  # another thread's or process's load, or a hit
        if how:
            refused(how)
            result = await run()
            await _aio.off_loop(_core.cm_cache_set, handle, key, store(result), ttl_ms)
            miss.inc()
            return result
        hit.inc()
        return value

    async def call(*args: Any, **kwargs: Any) -> Any:
        key = key_of(*args, **kwargs)
        if local:
            data = get_hit(handle, key)
            if data is not None:
                value, how = decode(key, data)
                if not how:
                    hit.inc()
                    return value
                refused(how)
        result, started = await flights.run_started(key, lambda: load(key, args, kwargs))
        if not started:
            hit.inc()  # another task's load: the function did not run for this call
        return result

    return call
