# SPDX-License-Identifier: Apache-2.0
"""Metrics: ``Registry``, its families (``Counter``, ``Gauge``, ``Histogram``)
and their labelled series.

Lifetimes: a registry's C handle is freed (with its last persistence flush)
when the last Python object using it goes: the ``Registry``, or any family,
series, cache or server created on it. ``Registry.close()`` only gives up the
registry's own hold, so a series kept somewhere never points at freed memory.

Hot path: a series' update methods (``inc``, ``add``, ``set``, ``observe``)
are C callables bound to the series handle (``_core.series_update``, a small
vectorcall type in cmpy_update.c), stored in the series' slots: one C call,
no Python frame, no SWIG argument unpacking.
"""
from __future__ import annotations

import functools
import os
import threading
import time
import urllib.parse
import weakref
from types import TracebackType
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Type,
                    TypeVar, Union)

from . import _core
from ._errors import InvalidArgument, StateError

__all__ = [
    "Registry", "Counter", "Gauge", "Histogram", "CounterSeries", "GaugeSeries", "HistogramSeries", "Timer",
    "DEFAULT_PREFIX",
]

DEFAULT_PREFIX = "cachemeter_"
_FORMATS: Dict[str, int] = {
    "prometheus": _core.CM_FORMAT_PROMETHEUS,
    "openmetrics": _core.CM_FORMAT_OPENMETRICS,
    "json": _core.CM_FORMAT_JSON,
}
_F = TypeVar("_F", bound=Callable[..., Any])
PathLike = Union[str, "os.PathLike[str]"]

# Fork safety (docs/threading.md, "fork()"): a thread of the parent can hold
# a registry's or a family's lock at fork() (preempted by the interpreter in
# counter() or labels()); the child has no such thread, so the lock would
# stay taken and the child's first new family or series would wait forever.
# What they guard is consistent between bytecodes, so the child gets fresh,
# free locks (threading.Lock._at_fork_reinit is 3.9+ and private: replaced).
_lock_owners: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _new_locks_in_child() -> None:
    Registry._default_lock = threading.Lock()
    for owner in list(_lock_owners):
        owner._lock = threading.Lock()


os.register_at_fork(after_in_child=_new_locks_in_child)


def _q(value: object) -> str:
    """Percent-encodes an option value (the C option parser decodes it once)."""
    return urllib.parse.quote(str(value), safe="")


class Registry:
    """A set of metric families (``cm_registry``).

    ``Registry(prefix="myapp_cache_", const_labels={"env": "prod"}, max_series=50000,
    persist_gauges=False)`` creates a registry; ``Registry.default()`` is the
    process-wide one the caches and servers use when given no registry.

    ``prefix`` renames the metrics cachemeter itself emits (cache, HTTP and
    self metrics; default ``"cachemeter_"``); application metrics keep their
    names. ``const_labels`` are added to every series; ``max_series`` caps the
    labelled series (``LimitExceeded`` past it).

    ``shared="/run/app/metrics"`` makes a registry shared by the worker
    processes of a pool (gunicorn, uvicorn ``--workers``; docs/multiprocess.md):
    every update lands in this process's slot in the directory and
    ``render()`` shows the whole pool. With it: ``max_workers`` (default 64,
    fixed when the directory is made), ``gauge_mode`` (``"livesum"`` default,
    ``"sum"``, ``"max"``, ``"min"``, ``"livemax"``, ``"mostrecent"``, ``"all"``),
    ``shared_fallback`` (``"fail"``: ``LimitExceeded`` when every slot is held
    by a live process; ``"local"``: count this process only) and
    ``shared_readonly=True`` (a sidecar's view: renders, claims no slot).
    A registry made before ``os.fork()`` gives each child its own slot.
    """

    _default: Optional["Registry"] = None
    _default_lock = threading.Lock()

    def __init__(self, prefix: Optional[str] = None, const_labels: Optional[Mapping[str, str]] = None,
                 max_series: Optional[int] = None, persist_gauges: Optional[bool] = None,
                 shared: Optional[str] = None, max_workers: Optional[int] = None,
                 gauge_mode: Optional[str] = None, shared_fallback: Optional[str] = None,
                 shared_readonly: Optional[bool] = None) -> None:
        opts = []
        if shared is not None:
            # A registry shared by a pool of worker processes (docs/multiprocess.md).
            opts.append("shared=" + _q(os.fspath(shared)))
        for key, value in (("max_workers", max_workers), ("gauge_mode", gauge_mode),
                           ("shared_fallback", shared_fallback)):
            if value is not None:
                opts.append(f"{key}={_q(value)}")
        if shared_readonly is not None:
            opts.append("shared_readonly=" + ("true" if shared_readonly else "false"))
        if prefix is not None:
            opts.append("prefix=" + _q(prefix))
        if const_labels:
            # split on ',' and ':' by the C parser first, then each piece decoded once
            opts.append("const_labels=" + ",".join(f"{_q(k)}:{_q(v)}" for k, v in const_labels.items()))
        if max_series is not None:
            opts.append(f"max_series={int(max_series)}")
        if persist_gauges is not None:
            opts.append("persist_gauges=" + ("true" if persist_gauges else "false"))
        self._init(_core.cm_registry_new("&".join(opts)), prefix if prefix is not None else DEFAULT_PREFIX,
                   owned=True)

    def _init(self, handle: Any, prefix: str, owned: bool) -> None:
        self._h: Any = handle
        self._owned = owned
        self.prefix: str = prefix
        """The prefix of the metrics cachemeter itself emits."""
        self._families: Dict[int, "_Family"] = {}
        self._lock = threading.Lock()
        _lock_owners.add(self)
        self._persisting_pid: Optional[int] = None  # the process that called persist()

    @classmethod
    def default(cls) -> "Registry":
        """The process-wide default registry (``cm_registry_default()``): never freed."""
        with cls._default_lock:
            if cls._default is None:
                reg = cls.__new__(cls)
                reg._init(_core.cm_registry_default(), DEFAULT_PREFIX, owned=False)
                cls._default = reg
            return cls._default

    # ---- lifetime
    def _handle(self) -> Any:
        h = self._h
        if h is None:
            raise StateError("the registry is closed")
        return h

    def _keepalive(self, obj: Any) -> None:
        """Makes a family or series handle keep this registry's C handle alive."""
        if self._owned:
            obj._registry = self._handle()

    def _hold(self, handle: Any) -> None:
        """Makes a cache or server handle keep this registry's C handle alive
        until the handle's destructor has closed it (cmpy_hold)."""
        if self._owned:
            _core.hold(handle, self._handle())

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._h is None

    def close(self) -> None:
        """Gives up this object's hold on the registry; idempotent.

        A persisted registry is flushed first, so what it holds is on disk now
        (by the process that called ``persist()``: in a child forked after it,
        the file is the parent's and close() does not write it).
        The C registry is freed (with its last flush, releasing the metrics
        file) once no family, series, cache or server of it is left. On the
        default registry (never freed) it does nothing.
        """
        h = self._h
        if h is None or not self._owned:
            return
        if self._persisting_pid == os.getpid():
            _core.cm_registry_flush(h)
        with self._lock:
            self._families.clear()
        self._h = None

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._h is None else ("default" if not self._owned else "open")
        return f"<cachemeter.Registry prefix={self.prefix!r} {state}>"

    # ---- families
    def _family(self, cls: Type["_FamT"], ptr: Any, name: str, help: str, labels: Tuple[str, ...]) -> "_FamT":
        key = int(ptr)
        with self._lock:
            fam = self._families.get(key)
            if fam is None:
                self._keepalive(ptr)
                fam = cls(self, ptr, name, help, labels)
                self._families[key] = fam
        if not isinstance(fam, cls):  # cannot happen: C refuses a name of another type
            raise StateError(f"{name!r} is registered as a {fam.type}")
        return fam

    def counter(self, name: str, help: str = "", labels: Iterable[str] = ()) -> "Counter":
        """Registers (or finds) a counter family. Exposed as ``NAME_total``.

        Raises ``InvalidArgument`` for a bad name or label name and
        ``AlreadyExists`` when the name is taken by another type or labels.
        """
        labels = _label_names(labels)
        ptr = _core.cm_counter_new(self._handle(), name, help, labels)
        return self._family(Counter, ptr, name, help, labels)

    def gauge(self, name: str, help: str = "", labels: Iterable[str] = (), mode: Optional[str] = None) -> "Gauge":
        """Registers (or finds) a gauge family.

        ``mode`` (shared registries, docs/multiprocess.md): how the workers'
        values become one: ``"sum"``, ``"max"``, ``"min"``, ``"livesum"``,
        ``"livemax"``, ``"mostrecent"`` (the live worker that ``set()`` it
        last) or ``"all"`` (a ``worker`` label); None takes the
        registry's ``gauge_mode``. ``AlreadyExists`` when the family exists
        with another mode, here or in another worker.
        """
        labels = _label_names(labels)
        if mode is not None:
            ptr = _core.cm_gauge_new_mode(self._handle(), name, help, labels, mode)
            return self._family(Gauge, ptr, name, help, labels)
        ptr = _core.cm_gauge_new(self._handle(), name, help, labels)
        return self._family(Gauge, ptr, name, help, labels)

    def histogram(self, name: str, help: str = "", labels: Iterable[str] = (),
                  buckets: Optional[Sequence[float]] = None) -> "Histogram":
        """Registers (or finds) a histogram family.

        ``buckets``: finite, strictly increasing upper bounds (``+Inf`` is
        implicit); ``None`` selects the default latency buckets in seconds.
        """
        labels = _label_names(labels)
        ptr = _core.cm_histogram_new(self._handle(), name, help, labels,
                                     None if buckets is None else [float(b) for b in buckets])
        return self._family(Histogram, ptr, name, help, labels)

    # ---- exposition, persistence
    def render(self, format: str = "prometheus") -> str:
        """The registry as Prometheus text 0.0.4 (``"prometheus"``), OpenMetrics
        1.0 (``"openmetrics"``) or JSON (``"json"``, schema in docs/exposition.md)."""
        try:
            fmt = _FORMATS[format]
        except KeyError:
            raise InvalidArgument(f"unknown format {format!r}: expected one of {', '.join(_FORMATS)}") from None
        return _core.cm_registry_render(self._handle(), fmt)

    def persist(self, path: PathLike, interval: float = 1.0) -> None:
        """Persists the registry in the SQLite file ``path`` and restores what it
        holds (``cm_registry_persist``); a background thread flushes every
        ``interval`` seconds (0: only ``flush()``, ``close()`` and the last
        flush write). Not on the default registry (it is never freed).

        Raises ``StateError`` when another process owns the file, ``Corrupt``
        for a file that is not ours, ``Unavailable`` when it cannot be created or
        opened, ``BackendError`` when SQLite fails past that (a full disk).
        """
        if not self._owned:
            raise InvalidArgument("the default registry cannot persist: it is never freed, so it would "
                                  "never write its last flush; create a Registry()")
        if not interval >= 0:
            raise InvalidArgument(f"interval must be >= 0 seconds, not {interval!r}")
        _core.cm_registry_persist(self._handle(), os.fspath(path), int(round(interval * 1000)))
        self._persisting_pid = os.getpid()

    def flush(self) -> None:
        """Writes what changed since the last flush (``StateError`` if not persisting,
        or in a child forked after ``persist()``: the file stays the parent's)."""
        _core.cm_registry_flush(self._handle())

    def export(self, target: Any, interval: Optional[float] = None, **options: Any) -> Any:
        """Starts an exporter of this registry (docs/exporters.md) and returns it
        (``cachemeter.Exporter``, a context manager with ``flush()``/``stop()``).

        ``target``: a URI, ``"statsd://127.0.0.1:8125?prefix=myapp"`` or
        ``"statsd+unix:///run/datadog/dsd.socket"``; or a callable taking a list
        of ``cachemeter.Sample`` once per flush (raising keeps them pending).
        ``interval`` in seconds (default 1; 0: only ``flush()`` and the final
        flush); other keyword options are added to the URI's (``name=``,
        ``timeout_ms=``, ``deltas=``, ``all=``, ...)."""
        from ._export import Exporter
        return Exporter(self, target, interval, **options)

    def load(self, path: PathLike) -> None:
        """Reads a metrics file another registry persisted, without owning it
        (``cm_registry_load``): its families are registered and set to the saved
        values. For inspection of a file a running process may be writing."""
        _core.cm_registry_load(self._handle(), os.fspath(path))

    def reset(self) -> None:
        """Zeroes every series; families and series stay valid."""
        _core.cm_registry_reset(self._handle())


def _label_names(labels: Iterable[str]) -> Tuple[str, ...]:
    if isinstance(labels, (str, bytes)):
        raise TypeError("labels must be a sequence of label names, e.g. labels=(\"path\",), not a string")
    return tuple(labels)


# ---- series -------------------------------------------------------------------

# The operations of _core.series_update (cmpy.h, cmpy_update_op).
_COUNTER_INC, _GAUGE_INC, _GAUGE_DEC, _GAUGE_SET, _OBSERVE = range(5)

class _Series:
    __slots__ = ("_p", "family", "label_values", "__weakref__")
    _p: Any
    family: "_Family"
    label_values: Tuple[str, ...]

    def __init__(self, ptr: Any, family: "_Family", values: Tuple[str, ...]) -> None:
        self._p = ptr
        self.family = family
        """The family this series belongs to."""
        self.label_values = values
        """The label values, in the family's label order."""

    @property
    def value(self) -> float:
        """The current value (a histogram's observation count)."""
        return _core.cm_series_value(self._p)

    def __repr__(self) -> str:
        labels = ",".join(f'{n}="{v}"' for n, v in zip(self.family.label_names, self.label_values))
        return f"<{type(self).__name__} {self.family.name}{{{labels}}} value={self.value}>"


class CounterSeries(_Series):
    """One labelled counter. ``inc(v=1.0)`` adds ``v >= 0`` (``InvalidArgument``
    for a negative or NaN ``v``, which the C library ignores and counts);
    ``value`` reads it. ``inc`` is the C update bound to this series: lock-free,
    no allocation, the GIL kept (cheaper than releasing it)."""

    __slots__ = ("inc",)
    inc: Callable[..., None]

    def __init__(self, ptr: Any, family: "_Family", values: Tuple[str, ...]) -> None:
        super().__init__(ptr, family, values)
        self.inc = _core.series_update(ptr, _COUNTER_INC, ptr)


class GaugeSeries(_Series):
    """One labelled gauge: ``inc(v=1.0)``, ``dec(v=1.0)``, ``add(v)`` (lock-free),
    ``set(v)`` (takes a short process-wide lock: prefer ``add`` on hot paths),
    ``set_to_current_time()``, ``track_inprogress()``, ``value``."""

    __slots__ = ("inc", "dec", "add", "set")
    inc: Callable[..., None]
    dec: Callable[..., None]
    add: Callable[..., None]
    set: Callable[..., None]

    def __init__(self, ptr: Any, family: "_Family", values: Tuple[str, ...]) -> None:
        super().__init__(ptr, family, values)
        self.inc = _core.series_update(ptr, _GAUGE_INC, ptr)
        self.add = self.inc
        self.dec = _core.series_update(ptr, _GAUGE_DEC, ptr)
        self.set = _core.series_update(ptr, _GAUGE_SET, ptr)

    def set_to_current_time(self) -> None:
        """Sets the gauge to the Unix time in seconds."""
        self.set(time.time())

    def track_inprogress(self) -> "_InProgress":
        """A context manager and decorator: +1 on entry, -1 on exit."""
        return _InProgress(self)


class HistogramSeries(_Series):
    """One labelled histogram: ``observe(v)`` (lock-free; ``InvalidArgument`` for
    NaN), ``time()`` (a context manager and decorator observing the elapsed
    seconds), ``value``/``count`` (observations) and ``sum``."""

    __slots__ = ("observe",)
    observe: Callable[..., None]

    def __init__(self, ptr: Any, family: "_Family", values: Tuple[str, ...]) -> None:
        super().__init__(ptr, family, values)
        self.observe = _core.series_update(ptr, _OBSERVE, ptr)

    @property
    def count(self) -> float:
        """The number of observations."""
        return _core.cm_series_value(self._p)

    @property
    def sum(self) -> float:
        """The sum of the observations."""
        return _core.cm_histogram_sum(self._p)

    def time(self) -> "Timer":
        """Times a block (``with h.time():``) or every call of a function
        (``@h.time()``), observing the elapsed seconds (``time.perf_counter``)."""
        return Timer(self.observe)


class Timer:
    """Observes elapsed seconds into a histogram: a context manager, and a
    decorator (each call is timed on its own)."""

    __slots__ = ("_observe", "_start")

    def __init__(self, observe: Callable[[float], None]) -> None:
        self._observe = observe
        self._start = 0.0

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._observe(time.perf_counter() - self._start)

    def __call__(self, fn: _F) -> _F:
        observe = self._observe

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                observe(time.perf_counter() - start)

        return timed  # type: ignore[return-value]


class _InProgress:
    __slots__ = ("_g",)

    def __init__(self, g: GaugeSeries) -> None:
        self._g = g

    def __enter__(self) -> None:
        self._g.inc()

    def __exit__(self, *exc: Any) -> None:
        self._g.dec()

    def __call__(self, fn: _F) -> _F:
        g = self._g

        @functools.wraps(fn)
        def tracked(*args: Any, **kwargs: Any) -> Any:
            g.inc()
            try:
                return fn(*args, **kwargs)
            finally:
                g.dec()

        return tracked  # type: ignore[return-value]


# ---- families -----------------------------------------------------------------

_S = TypeVar("_S", bound=_Series)


class _Family:
    """A named metric and its label names (``cm_family``)."""

    type = ""
    _series_cls: Type[_Series] = _Series

    def __init__(self, registry: Registry, ptr: Any, name: str, help: str, label_names: Tuple[str, ...]) -> None:
        self.registry = registry
        """The registry the family belongs to."""
        self._p = ptr
        self.name = name
        """The name it was registered with (a counter is exposed as ``NAME_total``)."""
        self.help = help
        self.label_names = label_names
        self._children: Dict[Tuple[Any, ...], _Series] = {}
        self._lock = threading.Lock()
        _lock_owners.add(self)

    def labels(self, *values: Any, **kv: Any) -> Any:
        """The series with these label values, positionally in label order
        (``.labels("/users", "200")``) or by name (``.labels(path="/users",
        code="200")``). Values are converted with ``str()``. Creating a series
        past the registry's ``max_series`` raises ``LimitExceeded``."""
        if kv:
            if values:
                raise TypeError("labels() takes label values by position or by name, not both")
            if set(kv) != set(self.label_names):
                raise InvalidArgument(
                    f"{self.name}: labels {sorted(kv)} do not match the label names {list(self.label_names)}")
            values = tuple(kv[n] for n in self.label_names)
        child = self._children.get(values)
        if child is not None:
            return child
        if len(values) != len(self.label_names):
            raise InvalidArgument(f"{self.name}: {len(values)} label values for the "
                                  f"{len(self.label_names)} label names {list(self.label_names)}")
        strs = tuple(str(v) for v in values)
        ptr = _core.cm_family_series(self._p, strs)
        self.registry._keepalive(ptr)
        child = self._series_cls(ptr, self, strs)
        with self._lock:
            child = self._children.setdefault(values, child)
        return child

    def _only(self) -> Any:
        """The family's one series, for label-less families."""
        if self.label_names:
            raise InvalidArgument(f"{self.name} has labels {list(self.label_names)}: call .labels(...) first")
        return self.labels()

    @property
    def value(self) -> float:
        """The value of a label-less family's series."""
        return self._only().value

    def __repr__(self) -> str:
        return f"<cachemeter.{type(self).__name__} {self.name!r} labels={list(self.label_names)}>"


_FamT = TypeVar("_FamT", bound=_Family)


class Counter(_Family):
    """A counter family: ``.labels(...)`` gives a ``CounterSeries``; a family
    without labels has ``inc(v=1.0)`` and ``value`` itself."""

    type = "counter"
    _series_cls = CounterSeries

    if TYPE_CHECKING:  # the precise return type, without a Python frame at run time
        def labels(self, *values: Any, **kv: Any) -> CounterSeries: ...

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if not self.label_names:
            self.inc = self.labels().inc

    def inc(self, v: float = 1.0) -> None:  # replaced by the series' bound C call when label-less
        """Adds v >= 0 to the label-less family's series."""
        self._only().inc(v)


class Gauge(_Family):
    """A gauge family: ``.labels(...)`` gives a ``GaugeSeries``; a label-less one
    has ``inc``, ``dec``, ``add``, ``set``, ``value`` itself."""

    type = "gauge"
    _series_cls = GaugeSeries

    if TYPE_CHECKING:  # the precise return type, without a Python frame at run time
        def labels(self, *values: Any, **kv: Any) -> GaugeSeries: ...

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if not self.label_names:
            s = self.labels()
            self.inc, self.dec, self.add, self.set = s.inc, s.dec, s.add, s.set

    def inc(self, v: float = 1.0) -> None:
        """Adds v to the label-less family's series."""
        self._only().inc(v)

    def dec(self, v: float = 1.0) -> None:
        """Subtracts v from the label-less family's series."""
        self._only().dec(v)

    def add(self, v: float) -> None:
        """Adds v (may be negative) to the label-less family's series."""
        self._only().add(v)

    def set(self, v: float) -> None:
        """Sets the label-less family's series to v."""
        self._only().set(v)

    def set_to_current_time(self) -> None:
        """Sets the label-less family's series to the Unix time."""
        self._only().set_to_current_time()

    def track_inprogress(self) -> _InProgress:
        """+1 on entry, -1 on exit (context manager and decorator)."""
        return self._only().track_inprogress()


class Histogram(_Family):
    """A histogram family: ``.labels(...)`` gives a ``HistogramSeries``; a
    label-less one has ``observe``, ``time``, ``value``/``count`` and ``sum``."""

    type = "histogram"
    _series_cls = HistogramSeries

    if TYPE_CHECKING:  # the precise return type, without a Python frame at run time
        def labels(self, *values: Any, **kv: Any) -> HistogramSeries: ...

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if not self.label_names:
            self.observe = self.labels().observe

    def observe(self, v: float) -> None:
        """Records one observation in the label-less family's series."""
        self._only().observe(v)

    def time(self) -> Timer:
        """Times a block or each call of a function (see ``HistogramSeries.time``)."""
        return self._only().time()

    @property
    def count(self) -> float:
        return self._only().count

    @property
    def sum(self) -> float:
        return self._only().sum
