#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The Grafana dashboards and Prometheus rules of dashboards/ (issue 18):

- the committed JSON is what dashboards/generate.py writes;
- each dashboard imports as grafana.com's flow expects (__inputs asks for a
  Prometheus datasource, every panel and variable uses ${DS_PROMETHEUS});
- every panel query and variable query is valid PromQL: with the template
  variables filled in, each becomes a recording rule of a file that
  `promtool check rules` must accept;
- every metric a query or rule names is one the docs list (docs/metrics.md,
  a renamed metric fails here) or a recording rule of recording.yml.

    check_dashboards.py SOURCE_DIR PROMTOOL
"""
import json
import os
import re
import subprocess
import sys
import tempfile

root, promtool = sys.argv[1], sys.argv[2]
dash = os.path.join(root, "dashboards")
failures = []

r = subprocess.run([sys.executable, os.path.join(dash, "generate.py"), "--check"], capture_output=True, text=True)
if r.returncode != 0:
    failures.append("generate.py --check: " + r.stdout + r.stderr)

with open(os.path.join(root, "docs", "metrics.md"), encoding="utf-8") as f:
    documented = set(re.findall(r"`(cachemeter_[a-z0-9_]+)`", f.read()))
with open(os.path.join(dash, "recording.yml"), encoding="utf-8") as f:
    recorded = set(re.findall(r"record: ([a-z0-9_:]+)", f.read()))
with open(os.path.join(dash, "alerts.yml"), encoding="utf-8") as f:
    alerts_text = f.read()


def metric_names(expr):
    out = set()
    for name in re.findall(r"\b(cachemeter_[a-z0-9_]+|cache:[a-z0-9_:]+)", expr):
        if name.startswith("cache:"):
            out.add(name)
            continue
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix) and name[: -len(suffix)] in documented:
                name = name[: -len(suffix)]
        out.add(name)
    return out


def fill(expr):
    expr = expr.replace("$__rate_interval", "5m")
    return re.sub(r"\$\{?[a-z_]+\}?", ".*", expr)


exprs = []  # (where, expr)
for name in ("cachemeter-caches.json", "cachemeter-endpoint.json"):
    with open(os.path.join(dash, name), encoding="utf-8") as f:
        board = json.load(f)
    inputs = board.get("__inputs", [])
    if not any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus" for i in inputs):
        failures.append(f"{name}: no __inputs entry for a Prometheus datasource DS_PROMETHEUS")
    for p in board["panels"]:
        if p.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
            failures.append(f"{name}: panel {p['title']!r} does not use ${{DS_PROMETHEUS}}")
        if not p.get("targets"):
            failures.append(f"{name}: panel {p['title']!r} has no query")
        for t in p.get("targets", []):
            exprs.append((f"{name}: {p['title']}", t["expr"]))
    for v in board["templating"]["list"]:
        q = v["query"]["query"]
        m = re.fullmatch(r"label_values\((.*),\s*([a-z_]+)\)", q)
        if not m:
            failures.append(f"{name}: variable {v['name']}: not label_values(selector, label): {q}")
            continue
        exprs.append((f"{name}: variable {v['name']}", m.group(1)))
for expr in re.findall(r"expr: (.+(?:\n {10}.+)*)", alerts_text):
    exprs.append(("alerts.yml", expr))

for where, expr in exprs:
    for name in metric_names(expr):
        if name.startswith("cache:"):
            if name not in recorded:
                failures.append(f"{where}: {name} is not a rule of recording.yml")
        elif name not in documented:
            failures.append(f"{where}: {name} is not a metric docs/metrics.md lists")

with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
    f.write("groups:\n  - name: dashboard_queries\n    rules:\n")
    for i, (where, expr) in enumerate(exprs):
        f.write(f"      - record: q{i}\n        expr: {json.dumps(fill(expr))}\n")
    rules = f.name
r = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
os.unlink(rules)
if r.returncode != 0:
    failures.append("promtool check rules on the dashboards' queries:\n" + r.stdout + r.stderr)

for line in failures:
    print("FAIL:", line)
print(f"{len(exprs)} queries checked, {len(failures)} problems")
sys.exit(1 if failures else 0)
