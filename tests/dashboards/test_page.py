# SPDX-License-Identifier: Apache-2.0
"""The endpoint's built-in dashboard (GET /, issue 18) in headless Chromium
(Debian's) against a live `cachemeter demo`: the page loads with no console
error and no CSP violation, polls /metrics.json, and the numbers in its DOM
equal /metrics.json's. The screenshot is kept as a test artifact
(dashboard.png in the test's working directory).

CM_CLI names the program (CTest passes it)."""
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
from lingering_demo import LingeringDemo  # noqa: E402
from prom_server import http_get  # noqa: E402

CLI = os.environ.get("CM_CLI", "cachemeter")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BOUND_S = 120
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=8000"]


def chromium(tmp_path, *args):
    assert os.path.exists(CHROMIUM), "chromium is not installed (scripts/setup.sh installs it)"
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=BOUND_S, env=env)


def test_dashboard_page_shows_what_metrics_json_says(tmp_path):
    with LingeringDemo(CLI, "--seconds", "2", "--threads", "2", "--keys", "3000") as demo:
        base = demo.base
        status, headers, body = http_get(base + "/")
        assert status == 200 and b'<script src="dashboard.js"' in body
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert http_get(base + "/dashboard.js")[1]["Content-Type"].startswith("text/javascript")
        want = {c["cache"]: c for c in json.loads(http_get(base + "/metrics.json")[2])["caches"]}
        assert set(want) == {"users", "sessions", "pages"}

        r = chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", base + "/")
        assert r.returncode == 0, r.stderr[-3000:]
        dom = r.stdout
        bad = [line for line in r.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line
               or "Uncaught" in line]
        assert not bad, bad
        polls = re.search(r'data-polls="(\d+)"', dom)
        assert polls and int(polls.group(1)) >= 2, "the page did not poll /metrics.json"
        rows = re.findall(r'<tr data-cache="([^"]+)" data-backend="([^"]+)">(.*?)</tr>', dom)
        assert {c for c, _, _ in rows} == set(want), rows
        for cache, backend, cells in rows:
            values = dict(re.findall(r'<td data-field="([a-z0-9_]+)" data-value="([^"]*)"', cells))
            w = want[cache]
            assert backend == w["backend"]
            assert float(values["hit_ratio"]) == w["hit_ratio"], (cache, values, w)
            for win in ("1m", "5m", "1h"):
                assert float(values["hit_ratio_" + win]) == w["hit_ratio_window"][win], (cache, win)
            assert float(values["get_p50"]) > 0 and float(values["get_p99"]) >= float(values["get_p50"])
            assert int(float(values["entries"])) > 0
        shot = os.path.join(os.getcwd(), "dashboard.png")
        r = chromium(tmp_path, "--window-size=1400,400", f"--screenshot={shot}", base + "/")
        assert r.returncode == 0 and os.path.getsize(shot) > 1000, r.stderr[-2000:]
