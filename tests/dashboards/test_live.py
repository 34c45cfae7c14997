# SPDX-License-Identifier: Apache-2.0
"""docs/metrics.md against what a running demo exposes, and every dashboard
query and rule of dashboards/ against a real Prometheus
that scrapes a running `cachemeter demo` with recording.yml and alerts.yml
loaded (issue 18): each returns data, not an empty result, so a renamed
metric or label fails here. The demo's memory caches never make a breaker,
a cross-process lock, a backend error, a persistence file or an auth failure: the queries of
those features (SILENT below) may be empty, and check_dashboards.py checks
their names against docs/metrics.md instead.

CM_CLI names the program (CTest passes it)."""
import json
import os
import re
import sys

import urllib.parse


HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "common"))
from lingering_demo import LingeringDemo  # noqa: E402
from prom_server import Prometheus, http_get, wait_for  # noqa: E402

CLI = os.environ.get("CM_CLI", "cachemeter")
BOUND_S = 90
# Features the demo does not exercise (memory caches, no persistence, no
# failures, an endpoint without auth).
SILENT = ("circuit_breaker", "lock_wait", "lock_timeouts", "cache_errors_total", "persist_flush_failures",
          "cache:error_ratio", "Auth failures")


def fill(expr):
    expr = expr.replace("$__rate_interval", "1m")
    return re.sub(r"\$\{?[a-z_]+\}?", ".*", expr)


def queries():
    out = []
    for name in ("cachemeter-caches.json", "cachemeter-endpoint.json"):
        with open(os.path.join(ROOT, "dashboards", name), encoding="utf-8") as f:
            board = json.load(f)
        for p in board["panels"]:
            for t in p["targets"]:
                out.append((f"{name}: {p['title']} [{t['refId']}]", fill(t["expr"])))
    with open(os.path.join(ROOT, "dashboards", "recording.yml"), encoding="utf-8") as f:
        for rule in re.findall(r"record: ([a-z0-9_:]+)", f.read()):
            out.append((f"recording.yml: {rule}", rule))
    return out


def query(prom, expr):
    url = prom.base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = json.loads(http_get(url)[2])
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def test_every_query_returns_data_from_a_live_demo(tmp_path):
    demo = LingeringDemo(CLI, "--seconds", "15", "--threads", "2", "--keys", "5000", wait_for_end=False).__enter__()
    port = demo.port
    prom = None
    try:
        rules = [os.path.abspath(os.path.join(ROOT, "dashboards", f)) for f in ("recording.yml", "alerts.yml")]
        prom = Prometheus(port, str(tmp_path), job="demo", rule_files=rules)
        # docs/metrics.md lists every metric the demo exposes (issue 18).
        with open(os.path.join(ROOT, "docs", "metrics.md"), encoding="utf-8") as f:
            documented = set(re.findall(r"`(cachemeter_[a-z0-9_]+)`", f.read()))
        exposed = set(re.findall(r"^# TYPE (\S+) ", http_get(f"http://127.0.0.1:{port}/metrics")[2].decode(), re.M))
        assert exposed, "the demo exposed nothing"
        assert exposed <= documented, f"exposed but not in docs/metrics.md: {sorted(exposed - documented)}"
        # The rule files loaded without errors.
        groups = json.loads(http_get(prom.base + "/api/v1/rules")[2])["data"]["groups"]
        assert {g["name"] for g in groups} == {"cachemeter_recording", "cachemeter_alerts"}
        for g in groups:
            for r in g["rules"]:
                assert r.get("health") in ("ok", "unknown"), r
        pending = {w: e for w, e in queries() if not any(s in w or s in e for s in SILENT)}
        assert len(pending) >= 20, pending

        def all_answer():
            for where in list(pending):
                if query(prom, pending[where]):
                    del pending[where]
            return (not pending, sorted(pending))
        wait_for("every dashboard query and recording rule to return data", all_answer, BOUND_S)

        # The rules evaluated healthy once they had data.
        groups = json.loads(http_get(prom.base + "/api/v1/rules")[2])["data"]["groups"]
        bad = [r["name"] for g in groups for r in g["rules"] if r.get("health") == "err"]
        assert not bad, bad
    finally:
        if prom is not None:
            prom.stop()
        demo.close()
