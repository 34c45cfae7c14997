# tests/http/test_prometheus.py: a real Prometheus server (Debian's
# `prometheus`) scrapes the embedded endpoint of cm_http_fixture every second;
# the values its query API returns must be exactly the ones driven into the
# fixture, and must follow when more are driven. promtool lints the payload.
#
# Run by ctest as http.prometheus (CM_HTTP_FIXTURE names the fixture binary).
# Everything binds 127.0.0.1; every wait is a bounded poll.
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import pytest

PROMETHEUS = os.environ.get("CM_PROMETHEUS", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("CM_PROMTOOL", "/usr/bin/promtool")
JOB = "cachemeter_fixture"
READY_TIMEOUT_S = 60
SCRAPE_TIMEOUT_S = 30


def wait_for(what, probe, timeout_s):
    """Polls probe() until it returns (True, _); fails after timeout_s with the
    last thing it saw."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while True:
        try:
            ok, seen = probe()
        except (OSError, ValueError) as e:  # not listening yet, bad JSON, ...
            ok, seen = False, repr(e)
        if ok:
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}; last seen: {seen}")
        time.sleep(0.1)


def http_get(url, timeout_s=5, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout_s) as r:
        return r.status, r.headers, r.read()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, timeout_s=10):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)


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


class Prometheus:
    """A throwaway Prometheus scraping one target every second."""

    def __init__(self, target_port, workdir):
        self.workdir = workdir
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global:\n"
                "  scrape_interval: 1s\n"
                "  scrape_timeout: 1s\n"
                "  evaluation_interval: 1s\n"
                "scrape_configs:\n"
                f"  - job_name: {JOB}\n"
                "    metrics_path: /metrics\n"
                "    static_configs:\n"
                f"      - targets: ['127.0.0.1:{target_port}']\n")
        self.log_path = os.path.join(workdir, "prometheus.log")
        # The port is picked before Prometheus binds it: retry on the rare race.
        for _ in range(3):
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}",
                 f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
                 "--storage.tsdb.retention.time=1h",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--web.enable-lifecycle", "--log.level=info"],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)
            if self._wait_ready():
                return
            self.stop()
        pytest.fail(f"prometheus did not start; log:\n{self.log_tail()}")

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if http_get(self.base + "/-/ready", timeout_s=2)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def log_tail(self, lines=30):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return repr(e)

    def query(self, promql):
        """{frozenset(labels without __name__): float} of an instant query."""
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        body = json.loads(http_get(url)[2])
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        return {frozenset((k, v) for k, v in r["metric"].items() if k != "__name__"): float(r["value"][1])
                for r in body["data"]["result"]}

    def targets(self):
        body = json.loads(http_get(self.base + "/api/v1/targets?state=active")[2])
        assert body["status"] == "success", body
        return [t for t in body["data"]["activeTargets"] if t["labels"].get("job") == JOB]

    def stop(self):
        stop_process(self.proc)
        self.log.close()


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
