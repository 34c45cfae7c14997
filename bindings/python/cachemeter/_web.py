# SPDX-License-Identifier: Apache-2.0
"""``make_wsgi_app`` / ``make_asgi_app``: a registry's ``/metrics`` inside an
application you already serve (no second port), with the endpoint's content
negotiation (OpenMetrics when the client prefers it, ties to the text
format) and gzip when the client accepts it."""
from __future__ import annotations

import gzip
from typing import Any, Callable, Iterable, List, Optional, Tuple

__all__ = ["make_wsgi_app", "make_asgi_app"]

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_MIN_GZIP = 1024  # smaller bodies go as they are (the endpoint's rule too)


def _ranges(header: Optional[str]) -> List[Tuple[str, float, str]]:
    """(value, q, version) per element of an Accept / Accept-Encoding list."""
    out = []
    for item in (header or "").split(","):
        parts = item.split(";")
        value = parts[0].strip().lower()
        if not value:
            continue
        q, version = 1.0, ""
        for p in parts[1:]:
            k, _, v = p.partition("=")
            k, v = k.strip().lower(), v.strip()
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
                if not 0 <= q <= 1:
                    q = 0.0
            elif k == "version":
                version = v
        out.append((value, q, version))
    return out


def wants_openmetrics(accept: Optional[str]) -> bool:
    q_om = q_text = 0.0
    for value, q, version in _ranges(accept):
        if value == "application/openmetrics-text":
            if version in ("", "1.0.0"):
                q_om = max(q_om, q)
        elif value in ("text/plain", "text/*", "*/*"):
            if value != "text/plain" or version in ("", "0.0.4"):
                q_text = max(q_text, q)
    return q_om > 0 and q_om > q_text


def accepts_gzip(accept_encoding: Optional[str]) -> bool:
    q_gzip = q_star = -1.0
    for value, q, _ in _ranges(accept_encoding):
        if value in ("gzip", "x-gzip"):
            q_gzip = max(q_gzip, q)
        if value == "*":
            q_star = max(q_star, q)
    return q_gzip > 0 if q_gzip >= 0 else q_star > 0


def _respond(registry: Any, accept: Optional[str], accept_encoding: Optional[str]) -> Tuple[bytes, List[Tuple[str, str]]]:
    om = wants_openmetrics(accept)
    body = registry.render("openmetrics" if om else "prometheus").encode("utf-8")
    headers = [("Content-Type", OPENMETRICS_TYPE if om else TEXT_TYPE), ("Vary", "Accept, Accept-Encoding")]
    if len(body) >= _MIN_GZIP and accepts_gzip(accept_encoding):
        body = gzip.compress(body, compresslevel=6)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    return body, headers


def _registry(registry: Any) -> Any:
    if registry is None:
        from ._metrics import Registry
        return Registry.default()
    return registry


def make_wsgi_app(registry: Any = None) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering GET/HEAD with ``registry``'s exposition (None:
    the default registry); mount it at ``/metrics`` (werkzeug's
    ``DispatcherMiddleware``, Flask, Django, ``wsgiref``). Rendering runs in
    the server's worker thread with the GIL released."""
    reg = _registry(registry)

    def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")])
            return [b""]
        body, headers = _respond(reg, environ.get("HTTP_ACCEPT"), environ.get("HTTP_ACCEPT_ENCODING"))
        start_response("200 OK", headers)
        return [b"" if method == "HEAD" else body]

    return app


def make_asgi_app(registry: Any = None) -> Callable[..., Any]:
    """An ASGI app answering GET/HEAD with ``registry``'s exposition (None: the
    default registry); mount it at ``/metrics`` (FastAPI/Starlette
    ``app.mount("/metrics", make_asgi_app(reg))``). Rendering runs in a worker
    thread (``run_in_executor``), never on the event loop."""
    import asyncio

    reg = _registry(registry)

    async def app(scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await send({"type": "http.response.start", "status": 405,
                        "headers": [(b"allow", b"GET, HEAD"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        hdrs = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        loop = asyncio.get_running_loop()
        body, headers = await loop.run_in_executor(None, _respond, reg, hdrs.get("accept"),
                                                   hdrs.get("accept-encoding"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return app
