# SPDX-License-Identifier: Apache-2.0
"""The Python examples as a user runs them (issue 18, item 5):
examples/python/wsgi_app.py under a real gunicorn, and
examples/python/batch_script.py as a script, its final push going to a
real Pushgateway."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BOUND, poll

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wsgi_example_under_gunicorn(tmp_path):
    gunicorn = shutil.which("gunicorn") or "/usr/bin/gunicorn"
    if not os.path.exists(gunicorn):
        pytest.fail("gunicorn is not installed (scripts/setup.sh installs it)")
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w")
    proc = subprocess.Popen([sys.executable, gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "1",
                             "--chdir", EXAMPLES, "wsgi_app:app"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            if proc.poll() is not None:
                raise AssertionError("gunicorn exited: " + (tmp_path / "gunicorn.log").read_text())
            try:
                return urllib.request.urlopen(base + "/price/apple", timeout=BOUND).status == 200
            except OSError:
                return False
        poll(up, BOUND * 6, "gunicorn to answer")
        for _ in range(4):
            with urllib.request.urlopen(base + "/price/apple", timeout=BOUND) as r:
                assert json.loads(r.read()) == {"item": "apple", "price": 6.25}
        with urllib.request.urlopen(base + "/metrics", timeout=BOUND) as r:
            samples = {(s.name, frozenset(s.labels.items())): s.value
                       for f in text_string_to_metric_families(r.read().decode()) for s in f.samples}
        calls = lambda res: samples[("cachemeter_cached_calls_total",  # noqa: E731
                                     frozenset({("function", "wsgi_app.price"), ("result", res)}))]
        assert calls("miss") == 1 and calls("hit") == 4  # the readiness probe's call and 4 more
        assert samples[("wsgi_requests_total", frozenset({("path", "/price")}))] == 5
    finally:
        proc.terminate()
        proc.wait(BOUND)
        log.close()


def test_batch_script_prints_and_pushes_its_metrics(tmp_path):
    from push_receivers import Gateway
    gw = Gateway(str(tmp_path))
    try:
        env = dict(os.environ, PUSHGATEWAY_URL=f"pushgateway://127.0.0.1:{gw.port}/metrics/job/batch")
        r = subprocess.run([sys.executable, os.path.join(EXAMPLES, "batch_script.py")], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=BOUND * 3)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "lookups: 950 hits, 50 misses, hit ratio 0.95" in r.stdout, r.stdout
        assert 'items_processed_total{kind="order"} 1000' in r.stdout  # application metrics keep their names
        pushed = gw.samples("batch")
        assert pushed[("items_processed_total", frozenset({("job", "batch"), ("instance", ""),
                                                                 ("kind", "order")}))] == 1000
        assert pushed[("batch_cache_hits_total", frozenset({("job", "batch"), ("instance", ""), ("cache", "lookups"),
                                                            ("backend", "memory")}))] == 950
    finally:
        gw.stop()
