# SPDX-License-Identifier: Apache-2.0
# tests/http/test_prometheus.py: a real Prometheus server (Debian's
# `prometheus`) scrapes the embedded endpoint of cm_http_fixture every second;
# the values its query API returns must be exactly the ones driven into the
# fixture, and must follow when more are driven. promtool lints the payload.
#
# Run by ctest as http.prometheus (CM_HTTP_FIXTURE names the fixture binary).
# Everything binds 127.0.0.1; every wait is a bounded poll.
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from prom_server import JOB, PROMETHEUS, PROMTOOL, Prometheus, http_get, stop_process, wait_for  # noqa: E402

SCRAPE_TIMEOUT_S = 30


class Fixture:
    """cm_http_fixture as a child process, driven line by line over stdin."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        first = self._line(10)
        assert first.startswith("PORT "), f"fixture said {first!r}; stderr: {self._stderr()}"
        self.port = int(first.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def _pump(self):
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _line(self, timeout_s):
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            pytest.fail(f"fixture silent for {timeout_s}s")
        if line is None:
            pytest.fail(f"fixture exited ({self.proc.poll()}); stderr: {self._stderr()}")
        return line

    def _stderr(self):
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def cmd(self, *words):
        self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.proc.stdin.flush()
        answer = self._line(10)
        assert answer == "OK", f"{' '.join(map(str, words))}: {answer}"

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        stop_process(self.proc)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture(scope="module")
def fixture():
    binary = os.environ.get("CM_HTTP_FIXTURE")
    if not binary:
        pytest.skip("CM_HTTP_FIXTURE is not set (ctest sets it: ctest -R http.prometheus)")
    f = Fixture(binary)
    yield f
    f.stop()


@pytest.fixture(scope="module")
def prom(fixture):
    for tool in (PROMETHEUS, PROMTOOL):
        assert os.access(tool, os.X_OK), f"{tool} missing (Debian: apt-get install prometheus)"
    workdir = tempfile.mkdtemp(prefix="cm-prom-")
    p = Prometheus(fixture.port, workdir)
    yield p
    p.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def expect(prom, wanted):
    """Waits until every query in wanted (promql -> {labels: value}, compared
    exactly) returns exactly that; returns the last results."""
    def probe():
        got = {q: prom.query(q) for q in wanted}
        return got == wanted, got
    return wait_for(f"prometheus to return {wanted}", probe, SCRAPE_TIMEOUT_S)


def one(value, **labels):
    return {frozenset(labels.items()): value}


def test_prometheus_sees_driven_values(fixture, prom):
    inst = {"job": JOB, "instance": f"127.0.0.1:{fixture.port}"}
    # Round 1.
    fixture.cmd("add", "GET", 5)
    fixture.cmd("add", "POST", 2.5)
    fixture.cmd("set", 21.5)
    for _ in range(3):
        fixture.cmd("observe", 0.2)
    fixture.cmd("cache_get", "k")  # miss
    fixture.cmd("cache_set", "k", "v")
    fixture.cmd("cache_get", "k")  # hit
    lat_sum = 0.2 + 0.2 + 0.2  # 0.6000000000000001: the renderer must round-trip it
    expect(prom, {
        f'up{{job="{JOB}"}}': one(1.0, **inst),
        'fixture_requests_total{method="GET"}': one(5.0, method="GET", **inst),
        'fixture_requests_total{method="POST"}': one(2.5, method="POST", **inst),
        "fixture_temperature_celsius": one(21.5, **inst),
        "fixture_latency_seconds_count": one(3.0, **inst),
        "fixture_latency_seconds_sum": one(lat_sum, **inst),
        'fixture_latency_seconds_bucket{le="0.25"}': one(3.0, le="0.25", **inst),
        'fixture_latency_seconds_bucket{le="0.1"}': one(0.0, le="0.1", **inst),
        'cachemeter_cache_hits_total{cache="fixture"}': one(1.0, cache="fixture", backend="memory", **inst),
        'cachemeter_cache_misses_total{cache="fixture"}': one(1.0, cache="fixture", backend="memory", **inst),
        'cachemeter_cache_sets_total{cache="fixture"}': one(1.0, cache="fixture", backend="memory", **inst),
        'cachemeter_cache_entries{cache="fixture"}': one(1.0, cache="fixture", backend="memory", **inst),
    })

    # Round 2: new values reach Prometheus by later scrapes.
    fixture.cmd("add", "GET", 3)
    fixture.cmd("set", -4.25)
    fixture.cmd("observe", 1.5)
    fixture.cmd("cache_get", "k")
    fixture.cmd("cache_set", "k2", "v2")
    expect(prom, {
        'fixture_requests_total{method="GET"}': one(8.0, method="GET", **inst),
        'fixture_requests_total{method="POST"}': one(2.5, method="POST", **inst),
        "fixture_temperature_celsius": one(-4.25, **inst),
        "fixture_latency_seconds_count": one(4.0, **inst),
        "fixture_latency_seconds_sum": one(lat_sum + 1.5, **inst),
        'fixture_latency_seconds_bucket{le="+Inf"}': one(4.0, le="+Inf", **inst),
        'cachemeter_cache_hits_total{cache="fixture"}': one(2.0, cache="fixture", backend="memory", **inst),
        'cachemeter_cache_sets_total{cache="fixture"}': one(2.0, cache="fixture", backend="memory", **inst),
        'cachemeter_cache_entries{cache="fixture"}': one(2.0, cache="fixture", backend="memory", **inst),
    })
    # The endpoint's own count of its scrapes keeps rising too (a scrape shows
    # the requests answered before it, so N scrapes in, N-1).
    def counted_scrapes():
        served = prom.query(f'cachemeter_http_requests_total{{job="{JOB}",path="/metrics",code="200"}}')
        return len(served) == 1 and list(served.values())[0] >= 2, served
    wait_for("cachemeter_http_requests_total to count 2 scrapes", counted_scrapes, SCRAPE_TIMEOUT_S)


def test_scrapes_are_clean_openmetrics(fixture, prom):
    def healthy():
        t = prom.targets()
        ok = len(t) == 1 and t[0]["health"] == "up" and t[0]["lastError"] == ""
        return ok, t
    targets = wait_for("the target to be up without error", healthy, SCRAPE_TIMEOUT_S)
    assert targets[0]["scrapeUrl"] == f"http://127.0.0.1:{fixture.port}/metrics"

    samples = prom.query(f'scrape_samples_scraped{{job="{JOB}"}}')
    assert len(samples) == 1 and list(samples.values())[0] > 0, samples
    # Prometheus asks for OpenMetrics first; only that format carries _created
    # samples, so their presence shows what was negotiated (and that they ingest).
    created = prom.query('fixture_requests_created{method="POST"}')
    assert len(created) == 1 and list(created.values())[0] > 1e9, created
    # Served the same way by hand: OpenMetrics to Prometheus's Accept header.
    _, headers, body = http_get(fixture.base + "/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                  "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"})
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    # No sample was dropped as out of order, a duplicate or out of bounds
    # (Prometheus's own counters, read from its /metrics: it scrapes only us).
    own = http_get(prom.base + "/metrics")[2].decode()
    for m in ("prometheus_target_scrapes_sample_out_of_order_total",
              "prometheus_target_scrapes_sample_duplicate_timestamp_total",
              "prometheus_target_scrapes_sample_out_of_bounds_total",
              "prometheus_target_scrapes_exceeded_sample_limit_total"):
        lines = [ln for ln in own.splitlines() if ln.startswith(m + " ")]
        assert len(lines) == 1 and float(lines[0].split()[1]) == 0, (m, lines)


def test_promtool_accepts_payload(fixture):
    # Runs last: the families hold the series the tests above drove.
    status, headers, body = http_get(fixture.base + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert r.returncode == 0, f"promtool check metrics: {r.stdout.decode()}{r.stderr.decode()}"
