# SPDX-License-Identifier: Apache-2.0
"""tests/common/prom_server.py: a throwaway real Prometheus server (Debian's
`prometheus`) scraping one 127.0.0.1 target every second, and the polling
helpers its users share (tests/http/test_prometheus.py,
tests/python/test_gunicorn.py). Every wait is a bounded poll."""
import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

PROMETHEUS = os.environ.get("CM_PROMETHEUS", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("CM_PROMTOOL", "/usr/bin/promtool")
JOB = "cachemeter_fixture"
READY_TIMEOUT_S = 60


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


class Prometheus:
    """A throwaway Prometheus scraping one target every second."""

    def __init__(self, target_port, workdir, job=JOB, honor_labels=False, rule_files=()):
        self.workdir = workdir
        self.job = job
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global:\n"
                "  scrape_interval: 1s\n"
                "  scrape_timeout: 1s\n"
                "  evaluation_interval: 1s\n"
                + ("rule_files:\n" + "".join(f"  - {r}\n" for r in rule_files) if rule_files else "")
                + "scrape_configs:\n"
                f"  - job_name: {job}\n"
                "    metrics_path: /metrics\n"
                f"    honor_labels: {'true' if honor_labels else 'false'}\n"
                "    static_configs:\n"
                f"      - targets: ['127.0.0.1:{target_port}']\n")
        self.log_path = os.path.join(workdir, "prometheus.log")
        # The port is picked before Prometheus binds it: retry on the rare race.
        for _ in range(3):
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self.log = open(self.log_path, "w")
            # Not under a sanitizer runtime a Python suite preloads (a Go binary).
            env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}",
                 f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
                 "--storage.tsdb.retention.time=1h",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--web.enable-lifecycle", "--log.level=info"],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir, env=env)
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
        return [t for t in body["data"]["activeTargets"] if t["labels"].get("job") == self.job]

    def stop(self):
        stop_process(self.proc)
        self.log.close()
