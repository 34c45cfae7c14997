# SPDX-License-Identifier: Apache-2.0
"""tests/common/push_receivers.py: the real receivers of the push exporters,
started on free 127.0.0.1 ports and stopped by the tests that use them
(tests/python/test_statsd.py, test_pushgateway.py, tests/cli/test_demo_exporters.py):

- StatsdDaemon: Etsy's statsd (npm, pinned; scripts/setup.sh installs it in
  CM_STATSD_DIR) flushing every 100 ms to statsd_json_backend.js, which appends
  what it aggregated as JSON lines; totals() sums them.
- Gateway: Debian's prometheus-pushgateway, without persistence.

Every wait is a bounded poll."""
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from prom_server import free_port, stop_process, wait_for

STATSD_DIR = os.environ.get("CM_STATSD_DIR", "/opt/cachemeter-tools/statsd-0.9.0")
STATSD = os.path.join(STATSD_DIR, "node_modules", "statsd", "stats.js")
BACKEND = os.path.join(os.path.dirname(os.path.abspath(__file__)), "statsd_json_backend.js")
PUSHGATEWAY = os.environ.get("CM_PUSHGATEWAY", "/usr/bin/prometheus-pushgateway")
BOUND_S = 60

# Not under a sanitizer runtime a Python suite preloads.
_ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mgmt(port, cmd):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
        c.sendall(cmd.encode() + b"\n")
        return c.recv(65536).decode()


class StatsdDaemon:
    def __init__(self, workdir):
        node = shutil.which("node") or "/usr/bin/node"
        if not os.path.exists(STATSD) or not os.path.exists(node):
            pytest.fail(f"statsd is not installed in {STATSD_DIR} (scripts/setup.sh installs it)")
        self.port, self.mgmt_port = _free_udp_port(), free_port()
        self.out = os.path.join(workdir, "statsd-flushes.jsonl")
        config = os.path.join(workdir, "statsd-config.js")
        with open(config, "w") as f:
            json.dump({"address": "127.0.0.1", "port": self.port, "mgmt_address": "127.0.0.1",
                       "mgmt_port": self.mgmt_port, "flushInterval": 100, "backends": [BACKEND],
                       "jsonBackendFile": self.out, "deleteIdleStats": True}, f)
        self.log_path = os.path.join(workdir, "statsd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([node, STATSD, config], stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=workdir, env=_ENV)

        def up():
            if self.proc.poll() is not None:
                with open(self.log_path) as f:
                    raise AssertionError("statsd exited: " + f.read())
            return ("health: up" in _mgmt(self.mgmt_port, "health"), None)
        wait_for("statsd answering on its management port", up, BOUND_S)

    def totals(self):
        """The daemon's aggregates summed over its flushes: counters (sums),
        gauges (the last), timer_count (weighted sample counts)."""
        t = {"counters": {}, "gauges": {}, "timer_count": {}}
        if not os.path.exists(self.out):
            return t
        with open(self.out) as f:
            for line in f:
                fl = json.loads(line)
                for k, v in fl["counters"].items():
                    t["counters"][k] = t["counters"].get(k, 0) + v
                t["gauges"].update(fl["gauges"])
                for k, v in fl["timer_counters"].items():
                    t["timer_count"][k] = t["timer_count"].get(k, 0) + v
        return t

    def stop(self):
        stop_process(self.proc)
        self.log.close()


class Gateway:
    """web_config: the path of a --web.config.file (TLS, basic auth); the
    gateway is then probed over https with ca (its certificate)."""

    def __init__(self, workdir, port=None, web_config=None, ca=None, auth=None):
        if not os.path.exists(PUSHGATEWAY):
            pytest.fail(f"{PUSHGATEWAY} is missing (scripts/setup.sh installs prometheus-pushgateway)")
        self.port = port or free_port()
        self.base = f"{'https' if web_config else 'http'}://127.0.0.1:{self.port}"
        self.ctx = ssl.create_default_context(cafile=ca) if ca else None
        self.headers = {}
        if auth:
            self.headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        self.log = open(os.path.join(workdir, "pushgateway.log"), "a")
        argv = [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{self.port}", "--persistence.file=", "--log.level=warn"]
        if web_config:
            argv.append(f"--web.config.file={web_config}")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=workdir, env=_ENV)
        wait_for("the pushgateway to answer", lambda: (self._get("/-/ready")[0] == 200, None), BOUND_S)

    def _get(self, path):
        req = urllib.request.Request(self.base + path, headers=self.headers)
        with urllib.request.urlopen(req, timeout=5, context=self.ctx) as r:
            return r.status, r.read()

    def samples(self, job):
        """{(name, frozenset(labels)): value} of the gateway's /metrics for job."""
        text = self._get("/metrics")[1].decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.labels.get("job") == job:
                    out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(BOUND_S)
        self.log.close()

    def stop(self):
        stop_process(self.proc)
        self.log.close()
