# SPDX-License-Identifier: Apache-2.0
"""examples/fastapi_app.py under a real uvicorn (issue 17, item 6): started on a
free 127.0.0.1 port, driven by real HTTP requests; the responses and the cache
metrics on its /metrics must match what was asked. Once with one process over
a two-tier cache in front of a real redis-server, once with `--workers 2`
sharing one registry directory (docs/multiprocess.md)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BOUND, poll

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
FUNCTION = "fastapi_app.load_user"

pytest.importorskip("fastapi", reason="python3-fastapi (scripts/setup.sh installs it)")
pytest.importorskip("uvicorn", reason="python3-uvicorn (scripts/setup.sh installs it)")


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=BOUND) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class App:
    def __init__(self, tmp_path, env: dict, workers: int = 1):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = dict(os.environ, **env)  # under ASan: the runtime preload goes to the workers too
        self.log = open(tmp_path / "uvicorn.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", EXAMPLES, "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(workers), "--log-level", "warning", "fastapi_app:app"],
            env=full, stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("uvicorn exited: " + (tmp_path / "uvicorn.log").read_text())
            try:
                return get(self.base + "/users/0")[0] == 200
            except OSError:
                return False
        poll(up, BOUND * 6, "uvicorn to answer")

    def metrics(self) -> dict:
        status, body = get(self.base + "/metrics/")
        assert status == 200
        out = {}
        for fam in text_string_to_metric_families(body.decode()):
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(BOUND)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def calls(m: dict, result: str) -> float:
    return m.get(("cachemeter_cached_calls_total", frozenset({("function", FUNCTION), ("result", result)})), 0)


def drive(app: App) -> int:
    n = 0
    for user, times in ((1, 10), (2, 5), (3, 1)):
        for _ in range(times):
            status, body = get(f"{app.base}/users/{user}")
            assert status == 200
            assert json.loads(body) == {"id": user, "name": f"user-{user}", "roles": ["reader"]}
            n += 1
    status, body = get(f"{app.base}/users/-5")
    assert status == 404 and b"no user -5" in body
    return n


def test_fastapi_app_over_a_tiered_redis_cache(tmp_path, redis_socket):
    app = App(tmp_path, {"CM_REDIS_URL": f"redis+unix://{redis_socket}?namespace=fastapi"})
    try:
        n = drive(app)  # users 1, 2, 3 (and 0 at start-up, -5 failing)
        m = app.metrics()
        assert calls(m, "miss") == 4  # 0, 1, 2, 3: once each
        assert calls(m, "hit") == n - 3
        assert calls(m, "error") == 1
        hits = m[("cachemeter_cache_hits_total", frozenset({("cache", "users"), ("backend", "tiered")}))]
        assert hits == n - 3
    finally:
        app.stop()


def test_fastapi_app_with_two_workers_sharing_one_registry(tmp_path, redis_socket):
    shared = tmp_path / "metrics"
    app = App(tmp_path, {"CM_REDIS_URL": f"redis+unix://{redis_socket}?namespace=fastapi2",
                         "CM_SHARED_DIR": str(shared)}, workers=2)
    try:
        n = drive(app)
        # Any worker answers /metrics with the pool's totals: every call counted
        # once, whichever worker served it; a user loads once (Redis is shared).
        m = app.metrics()
        assert calls(m, "hit") + calls(m, "miss") == n + 1
        assert calls(m, "miss") == 4
        assert calls(m, "error") == 1
    finally:
        app.stop()
