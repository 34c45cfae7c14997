# SPDX-License-Identifier: Apache-2.0
"""A real gunicorn pool sharing one registry (docs/multiprocess.md; issue 15).

gunicorn (Debian's) runs the example app (examples/gunicorn_pool) with its
config, 4 sync workers and ``preload_app``, on a free 127.0.0.1 port: the app's ``Registry(shared=DIR)`` and its ``@cached``
function are made in the master before it forks, so every worker gets its own
slot. A real Prometheus scrapes ``/metrics`` every second while the client
sends a known number of requests, one at a time, and SIGKILLs a worker
halfway (gunicorn replaces it). At the end, ``/metrics`` from any worker and
Prometheus's query both show exactly the requests the client made, and the
cache's hits plus misses equal the calls made. Every wait is a bounded poll.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from prom_server import Prometheus, free_port, http_get, stop_process, wait_for  # noqa: E402

GUNICORN = shutil.which("gunicorn") or "/usr/bin/gunicorn"
WORKERS = 4
REQUESTS = 300
JOB = "gunicorn_app"
BOUND_S = 60

# The example app and its gunicorn config, as a user would run them.
EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "gunicorn_pool")


def children(pid):
    """The pids whose parent is pid (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(entry))
    return out


def samples(text):
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def pool_figures(text):
    """(app requests, square's hits + misses) of one /metrics body."""
    got = samples(text)
    key = frozenset({("cache", "square"), ("backend", "memory")})
    return (got.get(("app_requests_total", frozenset())),
            got.get(("cachemeter_cache_hits_total", key), 0) + got.get(("cachemeter_cache_misses_total", key), 0))


@pytest.fixture
def pool(tmp_path):
    if not os.path.exists(GUNICORN):
        pytest.skip("gunicorn is not installed (scripts/setup.sh installs it)")
    port = free_port()
    env = dict(os.environ, CM_SHARED_DIR=str(tmp_path / "metrics"), PYTHONDONTWRITEBYTECODE="1")
    log = open(tmp_path / "gunicorn.log", "w")
    # The example's config (4 workers, preload_app), its bind moved to a free port.
    proc = subprocess.Popen([sys.executable, GUNICORN, "-c", os.path.join(EXAMPLE, "gunicorn.conf.py"),
                             "--bind", f"127.0.0.1:{port}", "--chdir", EXAMPLE, "--graceful-timeout", "5",
                             "app:app"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {(tmp_path / 'gunicorn.log').read_text()[-3000:]}")
        return http_get(base + "/metrics")[0] == 200 and len(children(proc.pid)) == WORKERS, None

    wait_for("gunicorn and its 4 workers", up, BOUND_S)
    yield proc, base, port, tmp_path
    stop_process(proc)
    log.close()


def test_requests_and_cache_calls_add_up_across_a_killed_worker(pool):
    proc, base, port, tmp_path = pool
    prom = Prometheus(port, str(tmp_path), job=JOB)
    try:
        victim = None
        for i in range(REQUESTS):
            if i == REQUESTS // 2:
                victim = children(proc.pid)[0]
                os.kill(victim, signal.SIGKILL)

                def replaced():
                    now = children(proc.pid)
                    return victim not in now and len(now) == WORKERS, now

                wait_for("gunicorn to replace the killed worker", replaced, BOUND_S)
            status, _, body = http_get(f"{base}/{i}")
            assert status == 200 and int(body) == (i % 20) ** 2
        # Any worker renders the pool: ask several times (the kernel spreads
        # the connections over the workers' accept calls).
        served_by = set()
        for _ in range(4 * WORKERS):
            status, headers, body = http_get(base + "/metrics")
            assert status == 200
            served_by.add(headers["X-Worker"])
            assert pool_figures(body.decode()) == (REQUESTS, REQUESTS), headers["X-Worker"]
        assert str(victim) not in served_by

        def scraped():
            got = prom.query(f'app_requests_total{{job="{JOB}"}}')
            calls = prom.query(f'sum(cachemeter_cache_hits_total{{job="{JOB}",cache="square"}}) + '
                               f'sum(cachemeter_cache_misses_total{{job="{JOB}",cache="square"}})')
            values = (list(got.values()), list(calls.values()))
            return values == ([float(REQUESTS)], [float(REQUESTS)]), values

        wait_for(f"Prometheus to see {REQUESTS} requests and {REQUESTS} cache calls", scraped, BOUND_S)
        assert [t["health"] for t in prom.targets()] == ["up"]
    finally:
        prom.stop()
