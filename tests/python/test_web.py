# SPDX-License-Identifier: Apache-2.0
"""The metrics stack a Python app already runs (issue 17, item 4):

- cachemeter.prometheus_client.register(): our families inside a
  prometheus_client registry; generate_latest() and prometheus_client's own
  WSGI app (under wsgiref, a real server) expose them, parsed back exactly.
- cachemeter.make_wsgi_app() under wsgiref and make_asgi_app() mounted in a
  FastAPI app under uvicorn (real servers on free 127.0.0.1 ports): content
  negotiation, gzip, HEAD, 405.
"""
from __future__ import annotations

import gzip
import math
import os
import socket
import sys
import threading
import urllib.request
import wsgiref.simple_server

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import BOUND, poll  # noqa: E402

import cachemeter  # noqa: E402
from cachemeter import prometheus_client as cm_prom  # noqa: E402


def values(text: str) -> dict:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def fill(reg: "cachemeter.Registry") -> None:
    c = reg.counter("bridge_jobs", "Jobs \"done\" \\ here.", labels=("queue",))
    c.labels("mail").inc(3)
    c.labels("東京 \"q\" \\ \n").inc(0.1)  # UTF-8, quotes, backslash, newline
    g = reg.gauge("bridge_level", "Level.")
    g.set(-1e-300)
    h = reg.histogram("bridge_seconds", "Latency.", buckets=(0.001, 0.1, 1.0))
    for v in (0.0005, 0.05, 0.5, 7, 1 / 3):
        h.observe(v)


def get(url: str, headers: dict = None, method: str = "GET"):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=BOUND) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class Wsgi:
    """A wsgiref server on a free port, in a thread."""

    def __init__(self, app):
        class Quiet(wsgiref.simple_server.WSGIRequestHandler):
            def log_message(self, *args):
                pass
        self.srv = wsgiref.simple_server.make_server("127.0.0.1", 0, app, handler_class=Quiet)
        self.port = self.srv.server_port
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_bridge_puts_our_families_in_prometheus_client_exactly():
    reg = cachemeter.Registry(prefix="app_cache_")
    fill(reg)
    prom = prometheus_client.CollectorRegistry()
    own = prometheus_client.Counter("own_requests", "The app's own.", registry=prom)
    own.inc(2)
    collector = cm_prom.register(reg, registry=prom)

    ours = values(reg.render())
    theirs = values(prometheus_client.generate_latest(prom).decode())
    assert theirs[("own_requests_total", frozenset())] == 2
    assert ours, "nothing rendered"
    for key, v in ours.items():
        assert key in theirs, key
        assert same(theirs[key], v), (key, theirs[key], v)
    assert theirs[("bridge_jobs_total", frozenset({("queue", "東京 \"q\" \\ \n")}))] == 0.1
    assert theirs[("bridge_level", frozenset())] == -1e-300

    # Live: later updates show at the next collection.
    reg.counter("bridge_jobs", "Jobs \"done\" \\ here.", labels=("queue",)).labels("mail").inc(1)
    assert values(prometheus_client.generate_latest(prom).decode())[
        ("bridge_jobs_total", frozenset({("queue", "mail")}))] == 4

    # prometheus_client's own WSGI app, under a real server.
    srv = Wsgi(prometheus_client.make_wsgi_app(prom))
    try:
        status, _, body = get(f"http://127.0.0.1:{srv.port}/metrics")
        assert status == 200
        served = values(body.decode())
        assert served[("bridge_seconds_count", frozenset())] == 5
        assert served[("bridge_seconds_sum", frozenset())] == 0.0005 + 0.05 + 0.5 + 7 + 1 / 3
    finally:
        srv.close()
    prom.unregister(collector)
    assert ("bridge_level", frozenset()) not in values(prometheus_client.generate_latest(prom).decode())


def check_endpoint(url: str, reg: "cachemeter.Registry") -> None:
    status, headers, body = get(url)
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = values(body.decode())
    for key, v in values(reg.render()).items():
        assert same(got[key], v), key
    status, headers, body = get(url, {"Accept": "application/openmetrics-text; version=1.0.0, text/plain;q=0.5"})
    assert headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert body.endswith(b"# EOF\n")
    status, headers, body = get(url, {"Accept-Encoding": "gzip"})
    assert headers.get("content-encoding") == "gzip"
    assert values(gzip.decompress(body).decode())[("bridge_seconds_count", frozenset())] == 5
    status, headers, body = get(url, method="HEAD")
    assert status == 200 and body == b""
    status, headers, _ = get(url, method="POST")
    assert status == 405


def test_make_wsgi_app_under_wsgiref():
    reg = cachemeter.Registry()
    fill(reg)
    for i in range(200):  # enough text for gzip to apply
        reg.counter("padding", "P.", labels=("i",)).labels(str(i)).inc()
    srv = Wsgi(cachemeter.make_wsgi_app(reg))
    try:
        check_endpoint(f"http://127.0.0.1:{srv.port}/metrics", reg)
    finally:
        srv.close()


def test_make_asgi_app_mounted_in_fastapi_under_uvicorn():
    fastapi = pytest.importorskip("fastapi", reason="python3-fastapi (scripts/setup.sh installs it)")
    uvicorn = pytest.importorskip("uvicorn", reason="python3-uvicorn (scripts/setup.sh installs it)")
    reg = cachemeter.Registry()
    fill(reg)
    for i in range(200):
        reg.counter("padding", "P.", labels=("i",)).labels(str(i)).inc()
    app = fastapi.FastAPI()

    @app.get("/hello")
    def hello() -> dict:
        return {"hello": "world"}

    app.mount("/metrics", cachemeter.make_asgi_app(reg))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        poll(lambda: server.started, BOUND * 3, "uvicorn to start")
        assert get(f"http://127.0.0.1:{port}/hello")[2] == b'{"hello":"world"}'
        check_endpoint(f"http://127.0.0.1:{port}/metrics/", reg)
    finally:
        server.should_exit = True
        t.join(BOUND)
