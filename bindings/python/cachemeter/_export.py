# SPDX-License-Identifier: Apache-2.0
"""``Exporter``: pushes a registry's metrics out every interval (``cm_exporter``):
StatsD/DogStatsD by URI, or a Python callable (docs/exporters.md)."""
from __future__ import annotations

import atexit
import threading
import urllib.parse
import weakref
from types import TracebackType
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Type, Union

from . import _core
from ._errors import StateError

__all__ = ["Exporter", "Sample"]


class Sample(NamedTuple):
    """One series in a flush of a callback exporter."""
    name: str
    """The family's exposed name (a counter's ends in ``_total``)."""
    type: str
    """``"counter"``, ``"gauge"`` or ``"histogram"``."""
    labels: Dict[str, str]
    """The registry's const labels, then the series' labels."""
    value: float
    """Counter: its increase since the last accepted flush (its value with
    ``deltas=False``); gauge: its value; histogram: the sum of observations
    (or its increase)."""
    count: int
    """Histogram: observations (or their increase); else 0."""
    buckets: Optional[Tuple[Tuple[float, int], ...]]
    """Histogram: (upper bound, count) per bucket, not cumulative, ``inf``
    last; None for counters and gauges."""
    removed: bool
    """The series left the registry (a closed cache's): its final value."""


_live: "weakref.WeakSet[Exporter]" = weakref.WeakSet()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    # Before the interpreter finalizes: each exporter's final flush (a callback
    # exporter cannot call Python later), with the GIL released by the stop.
    with _live_lock:
        exporters = list(_live)
    for e in exporters:
        e.stop()


class Exporter:
    """A running exporter of ``registry``; made by ``Registry.export()``.

    ``flush()`` pushes now (raises the failure: ``Unavailable``, ``Timeout``,
    ``BackendError`` for a callback that raised; what was not sent stays
    pending). ``stop()`` (or leaving the ``with`` block) does a final flush and
    stops it; exporters still running at interpreter exit are stopped then.
    """

    def __init__(self, registry: Any, target: Union[str, Callable[[List[Sample]], Any]],
                 interval: Optional[float] = None, **options: Any) -> None:
        if interval is not None:
            options["interval_ms"] = int(round(float(interval) * 1000))
        for key, value in list(options.items()):
            if isinstance(value, bool):
                options[key] = "1" if value else "0"
        opts = "&".join(f"{k}={urllib.parse.quote(str(v), safe='')}" for k, v in options.items() if v is not None)
        reg = registry._handle()
        if callable(target):
            fn = target

            def call(raw: List[tuple]) -> None:
                fn([Sample(*t) for t in raw])

            h = _core.exporter_start_callback(reg, call, opts)
            _core.hold(h, (reg, call))  # both live until the handle is stopped
            self.target = getattr(fn, "__qualname__", repr(fn))
        elif isinstance(target, str):
            uri = target
            if opts:
                uri += ("&" if "?" in uri else "?") + opts
            h = _core.cm_exporter_start(reg, uri)
            _core.hold(h, reg)
            self.target = target
        else:
            raise TypeError("Registry.export() takes a URI string or a callable, not " + type(target).__name__)
        self._h: Any = h
        self.registry = registry
        with _live_lock:
            _live.add(self)

    def flush(self) -> None:
        """Pushes now, on this thread (the GIL released while it sends)."""
        h = self._h
        if h is None:
            raise StateError("the exporter is stopped")
        _core.cm_exporter_flush(h)

    def stop(self) -> None:
        """A final flush, then stopped (idempotent; failures are counted in
        ``exporter_sends_total``, not raised)."""
        self._h = None  # the handle's destructor stops it (GIL released)
        with _live_lock:
            _live.discard(self)

    close = stop

    @property
    def running(self) -> bool:
        return self._h is not None

    def __enter__(self) -> "Exporter":
        if self._h is None:
            raise StateError("the exporter is stopped")
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<cachemeter.Exporter {self.target}{'' if self._h is not None else ' stopped'}>"
