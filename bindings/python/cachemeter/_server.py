# SPDX-License-Identifier: Apache-2.0
"""``Server``: the embedded HTTP endpoint (``cm_server``) serving a registry
to Prometheus: /metrics, /metrics.json, /health (see server.h)."""
from __future__ import annotations

import urllib.parse
from types import TracebackType
from typing import Any, Optional, Tuple, Type, Union

from . import _core
from ._errors import StateError
from ._metrics import Registry

__all__ = ["Server"]


def _option(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return urllib.parse.quote(str(value), safe="")


class Server:
    """Serves ``registry`` (None: the default registry) over HTTP in its own
    thread(s) until ``stop()``.

    ``listen``: ``"host:port"``, ``"[v6]:port"`` or ``":port"``; port 0 picks
    a free port (``.port``). ``token`` requires ``Authorization: Bearer``;
    other keyword options map to ``cm_server_start``'s option string:
    ``basic_auth="user:password"`` (or a (user, password) tuple),
    ``tls_cert=``/``tls_key=`` (HTTPS), ``max_conns=``, ``timeout_s=``,
    ``threads=``, ``max_conns_per_ip=``, ``request_timeout_ms=``,
    ``health_interval_ms=`` (include/cachemeter/server.h says what each
    does). Unknown options raise ``InvalidArgument``; an address in
    use raises ``Unavailable``. Start and stop release the GIL.
    """

    def __init__(self, registry: Optional[Registry] = None, listen: str = "127.0.0.1:0",
                 token: Optional[str] = None, **options: Any) -> None:
        reg = registry if registry is not None else Registry.default()
        if token is not None:
            options["token"] = token
        auth = options.get("basic_auth")
        if isinstance(auth, tuple):
            options["basic_auth"] = ":".join(auth)
        opts = "&".join(f"{k}={_option(v)}" for k, v in options.items() if v is not None)
        h = _core.cm_server_start(reg._handle(), listen, opts)
        reg._hold(h)
        self._h: Any = h
        self.registry = reg
        self.listen = listen
        self.port: int = _core.cm_server_port(h)
        """The TCP port it listens on (the chosen one for port 0)."""
        scheme = "https" if options.get("tls_cert") else "http"
        host, _ = _split_listen(listen)
        self.url: str = f"{scheme}://{host}:{self.port}"
        """Where to reach it: 127.0.0.1 for an empty or wildcard host."""

    def stop(self) -> None:
        """Stops serving: closes the socket and every connection, joins the
        threads (idempotent)."""
        self._h = None  # the handle's destructor stops the server (GIL released)

    close = stop

    @property
    def running(self) -> bool:
        return self._h is not None

    def __enter__(self) -> "Server":
        if self._h is None:
            raise StateError("the server is stopped")
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<cachemeter.Server {self.url}{'' if self._h is not None else ' stopped'}>"


def _split_listen(listen: str) -> Tuple[str, Union[str, int]]:
    """("host", port) of a listen address, with a connectable host."""
    if listen.startswith("["):
        host, _, port = listen[1:].partition("]")
        host = "::1" if host in ("::", "") else host
        return f"[{host}]", port.lstrip(":")
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    return host, port
