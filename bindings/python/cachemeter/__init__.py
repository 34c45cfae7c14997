# SPDX-License-Identifier: Apache-2.0
"""cachemeter: cache handles with built-in Prometheus metrics (Python binding).

A thin Pythonic layer over the SWIG extension ``cachemeter._core``, which
wraps the C API of libcachemeter (include/cachemeter/*.h)::

    import cachemeter

    reg = cachemeter.Registry(prefix="myapp_cache_")
    requests = reg.counter("http_requests", "Requests served.", labels=("path", "code"))
    requests.labels("/users", "200").inc()

    with cachemeter.Cache("memory://?max_entries=10000", "users", registry=reg) as users:
        users.set("alice", b"admin", ttl=30)
        users.get("alice")                       # b"admin"; None on a miss
        users.get_or_load("bob", load_user)      # one load per key at a time

    @cachemeter.cached(ttl=60)
    def price(item: str) -> float: ...

    with cachemeter.Server(reg, token="s3cret") as srv:
        print(srv.url + "/metrics")
    print(reg.render("openmetrics"))

Every failure raises a ``cachemeter.Error`` subclass carrying the library's
message. See bindings/README.md for the typemaps, ownership and GIL policy.
"""
from . import _core, _errors
from ._cache import Cache
from ._cached import cached
from ._errors import *  # noqa: F401,F403  Error and one class per negative status (generated from common.h)
from ._metrics import (Counter, CounterSeries, Gauge, GaugeSeries, Histogram, HistogramSeries, Registry, Timer)
from ._server import Server
from ._export import Exporter, Sample
from ._web import make_asgi_app, make_wsgi_app

__version__: str = _core.cm_version()
"""The version of the libcachemeter actually loaded (``cm_version()``)."""

__all__ = [
    "Registry", "Counter", "Gauge", "Histogram", "CounterSeries", "GaugeSeries", "HistogramSeries", "Timer",
    "Cache", "Server", "Exporter", "Sample", "cached", "make_asgi_app", "make_wsgi_app",
    "__version__",
]
__all__ += _errors.__all__
