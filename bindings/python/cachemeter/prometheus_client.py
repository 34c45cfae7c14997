# SPDX-License-Identifier: Apache-2.0
"""Our metrics inside an app's existing prometheus_client registry, so its
``/metrics`` (``generate_latest``, ``make_wsgi_app``, ``make_asgi_app``,
``start_http_server``) shows them too, with no second port::

    import prometheus_client, cachemeter
    from cachemeter import prometheus_client as cm_prom

    reg = cachemeter.Registry()
    cm_prom.register(reg)                       # prometheus_client.REGISTRY by default
    prometheus_client.start_http_server(8000)   # ours and the app's, one page

At each collection the registry is rendered (text format 0.0.4, shortest
round-trip numbers) and handed over as prometheus_client metric families,
so the values are exact. Names must not collide with the app's own metrics
(prometheus_client does not check a collector without ``describe()``; a
name in both would be exposed twice). Needs Debian's python3-prometheus-client.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

import prometheus_client as _prom
from prometheus_client.parser import text_string_to_metric_families as _parse

__all__ = ["register", "CachemeterCollector"]


class CachemeterCollector:
    """A prometheus_client collector yielding a cachemeter registry's families."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from _parse(self.registry.render("prometheus"))

    def describe(self) -> list:
        # Nothing up front: prometheus_client would otherwise collect at
        # register() time to learn the names (and our families change).
        return []


def register(reg: Any, registry: Optional[Any] = None) -> CachemeterCollector:
    """Registers a collector of ``reg`` (a ``cachemeter.Registry``) with the
    prometheus_client ``CollectorRegistry`` ``registry`` (default
    ``prometheus_client.REGISTRY``) and returns it; ``registry.unregister(c)``
    stops it."""
    collector = CachemeterCollector(reg)
    (registry if registry is not None else _prom.REGISTRY).register(collector)
    return collector
