"""``@cached``: memoize a function in a cachemeter cache, with per-function
metrics.

Keys: ``<module>.<qualname>`` NUL, a tag byte, then the arguments: ``marshal``
(format 2, deterministic, core types only: None, bool, int, float, complex,
str, bytes, and tuples/lists/dicts/sets of them -- no subclasses) when it
can, else ``pickle`` (protocol 5: any picklable argument, unhashable ones
included, and ``self`` of a method by its state). Equal arguments that encode
differently (``f(1)`` and ``f(1.0)``, kwargs in another order) are separate
entries: a miss, never a wrong hit. A ``key=`` callable replaces all this:
``key(*args, **kwargs)`` returns bytes or str. Positional calls with
arguments of the core types (ints within 64 bits, nested at most 31 deep)
are encoded in C, to the same bytes; the rest here (``slow_key``).

Values: with the default serializer (``pickle``), marshal format 2 (written
and read in C) for results of the core types but complex, sets and ints past
64 bits, and ``pickle`` (protocol 5)
for any other: pickle output starts with byte 0x80 and marshal's never does,
so values pickled by earlier versions still load. A hit returns a new object
each time, as pickle does: mutating a result never changes the cached
value. A stored value neither decoder takes raises ``Corrupt``. With
``serializer=`` (an object with ``dumps``/``loads``), values are
``serializer.dumps(result)``. None results are cached too.

The wrapper is a C callable (``_core.CachedFunction``): on a ``memory://``
cache a hit keeps the GIL (it never waits for a load); a miss, and every
call on another backend, releases it around ``cm_cache_get_or_load``.

Metrics: the counter ``<prefix>cached_calls_total{function, result}`` in the
cache's registry, where result is ``hit`` (the function did not run for this
call: a cached value, or another caller's load it waited for), ``miss`` (it
ran and returned) or ``error`` (it raised). ``fn.metrics()`` reads them.
"""
from __future__ import annotations

import functools
import inspect
import marshal
import pickle
from typing import Any, Callable, Dict, Optional, TypeVar, Union, overload

from . import _core
from ._cache import Cache, _ttl_ms
from ._metrics import Registry

__all__ = ["cached"]

_F = TypeVar("_F", bound=Callable[..., Any])
_CACHE_NAME_MAX = 200  # bytes of UTF-8, the C API's limit on a cache name


def _cache_name(qualname: str) -> str:
    return qualname.encode("utf-8")[:_CACHE_NAME_MAX].decode("utf-8", "ignore") or "cached"


@overload
def cached(fn: _F) -> _F: ...


@overload
def cached(fn: None = None, *, cache: Union[Cache, str, None] = None, ttl: Optional[float] = None,
           key: Optional[Callable[..., Union[bytes, str]]] = None, serializer: Any = pickle,
           registry: Optional[Registry] = None, name: Optional[str] = None) -> Callable[[_F], _F]: ...


def cached(fn: Optional[Callable[..., Any]] = None, *, cache: Union[Cache, str, None] = None,
           ttl: Optional[float] = None, key: Optional[Callable[..., Union[bytes, str]]] = None,
           serializer: Any = pickle, registry: Optional[Registry] = None, name: Optional[str] = None) -> Any:
    """Caches a function's results in a cachemeter cache.

    ``@cached`` or ``@cached(cache=..., ttl=..., key=..., serializer=...)``:

    - ``cache``: a ``Cache``, a URI (a cache of that URI named after the
      function), or None: a ``memory://`` cache of its own, named after the
      function, in ``registry`` (None: the default registry).
    - ``ttl``: seconds (None: the cache's default; ``math.inf``: never).
    - ``key``: ``key(*args, **kwargs) -> bytes | str`` replacing the
      argument encoding (the function's name is still prepended).
    - ``serializer``: ``dumps``/``loads`` for the values (default ``pickle``).
    - ``name``: the function's name in keys and metrics (default
      ``module.qualname``).

    Concurrent callers with the same arguments run the function once
    (``get_or_load``); if it raises, its caller gets the exception and the
    callers waiting for it get ``BackendError``. Works on methods (``self``
    is part of the key, pickled by state: give ``key=`` for unpicklable
    instances). The wrapper has ``cache_clear()`` (clears its cache: the
    whole cache, so give each function its own when sharing matters),
    ``metrics()``, ``cache`` and ``__wrapped__``. Coroutine and generator
    functions are refused with ``TypeError``: their results are not values.
    """
    if fn is not None:
        return cached(cache=cache, ttl=ttl, key=key, serializer=serializer, registry=registry, name=name)(fn)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            # Its result is a coroutine or generator: not a value to store (and
            # caching it would hand one consumed object to every caller).
            raise TypeError(f"@cached cannot memoize {fn.__qualname__}: it returns a coroutine or a "
                            "generator; cache the values it produces instead")
        qualname = name or f"{fn.__module__}.{fn.__qualname__}"
        if cache is None or isinstance(cache, str):
            c = Cache(cache or "memory://", _cache_name(qualname), registry)
        else:
            c = cache
        reg = c.registry
        calls = reg.counter(reg.prefix + "cached_calls",
                            "Calls of @cached functions by result: hit (the function did not run for the "
                            "call), miss (it ran and returned), error (it raised).",
                            labels=("function", "result"))
        hit, miss, error = (calls.labels(qualname, r) for r in ("hit", "miss", "error"))
        ttl_ms = _ttl_ms(ttl)
        head = qualname.encode("utf-8") + b"\0"
        tag_args, tag_kwargs, tag_pickle, tag_user = head + b"a", head + b"k", head + b"p", head + b"u"
        handle = c._handle()
        mdumps, pdumps = marshal.dumps, pickle.dumps
        user_key = key

        def slow_key(args: tuple, kwargs: Optional[dict]) -> bytes:
            """The key of a call the C encoder does not take: keyword arguments,
            a user key=, arguments outside its types (same bytes where it
            overlaps: marshal version 2)."""
            if user_key is not None:
                k = user_key(*args, **(kwargs or {}))
                return tag_user + (k.encode("utf-8") if isinstance(k, str) else bytes(k))
            try:
                return tag_kwargs + mdumps((args, kwargs), 2) if kwargs else tag_args + mdumps(args, 2)
            except ValueError:  # not marshallable: an object, a subclass, too deep
                pass
            try:
                return tag_pickle + pdumps((args, kwargs or {}), 5)
            except Exception as e:
                raise TypeError(f"@cached {qualname}: cannot build a key from its arguments ({e}); "
                                "pass key=... to @cached") from e

        codec = serializer is pickle
        dumps = functools.partial(pickle.dumps, protocol=5) if codec else serializer.dumps
        local = c.uri[:9].lower() == "memory://"
        wrapper = _core.cached_function(fn, handle, (handle, hit._p, miss._p, error._p), tag_args, ttl_ms, local,
                                        hit._p, miss._p, error._p, slow_key, dumps, serializer.loads, codec,
                                        user_key is not None)

        def metrics() -> Dict[str, Any]:
            """This function's calls: hits, misses, errors, hit_ratio (hits over
            calls that did not raise; 0.0 before any), and its cache's name."""
            h, m, e = int(hit.value), int(miss.value), int(error.value)
            return {"function": qualname, "hits": h, "misses": m, "errors": e,
                    "hit_ratio": h / (h + m) if h + m else 0.0, "cache": c.name}

        def cache_clear() -> None:
            """Empties the function's cache (all of it, if shared)."""
            _core.cm_cache_clear(handle)

        functools.update_wrapper(wrapper, fn)
        wrapper.cache = c  # type: ignore[attr-defined]
        wrapper.cache_clear = cache_clear  # type: ignore[attr-defined]
        wrapper.metrics = metrics  # type: ignore[attr-defined]
        return wrapper

    return decorate
