#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the Grafana dashboards of dashboards/ (cachemeter-caches.json,
cachemeter-endpoint.json) from the panel lists below, so every query is in
one readable place. Run it after changing a panel; the test command checks
that the committed JSON is what this writes (tests/dashboards/).

    /usr/bin/python3 dashboards/generate.py [--check]

The dashboards import through grafana.com's flow: a Prometheus datasource is
asked for at import (__inputs: DS_PROMETHEUS). Template variables: job,
instance, cache, backend (multi-value, "All" by default). They use the
default metric prefix cachemeter_ and the recording rules of recording.yml
(load it in Prometheus); for another prefix, replace "cachemeter_" in the
JSON (docs/operations.md).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SEL = 'job=~"$job",instance=~"$instance",cache=~"$cache",backend=~"$backend"'
EP = 'job=~"$job",instance=~"$instance"'


def target(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def panel(pid, title, kind, exprs, unit, x, y, w=12, h=8, description=""):
    p = {
        "id": pid, "title": title, "type": kind, "datasource": DS, "description": description,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [target(e, legend, chr(ord("A") + i)) for i, (e, legend) in enumerate(exprs)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    return p


def variable(name, query, label):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": f"var-{name}"}, "definition": query,
        "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def dashboard(uid, title, description, panels, variables):
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "The Prometheus that scrapes cachemeter",
                      "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
        ],
        "uid": uid, "title": title, "description": description, "tags": ["cachemeter"],
        "editable": True, "graphTooltip": 1, "schemaVersion": 37, "version": 1, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"}, "timezone": "",
        "templating": {"list": variables}, "annotations": {"list": []}, "links": [],
        "panels": panels,
    }


def caches():
    hits = f"sum by (cache) (rate(cachemeter_cache_hits_total{{{SEL}}}[$__rate_interval]))"
    misses = f"sum by (cache) (rate(cachemeter_cache_misses_total{{{SEL}}}[$__rate_interval]))"
    panels = [
        panel(1, "Hit ratio (now)", "stat", [(f"{hits} / ({hits} + {misses})", "{{cache}}")], "percentunit", 0, 0, 8,
              description="Hits over lookups at the dashboard's rate interval."),
        panel(2, "Hit ratio over 5m and 1h", "timeseries", [
            (f"cache:hit_ratio:rate5m{{{SEL}}}", "{{cache}} 5m"),
            (f"cache:hit_ratio:rate1h{{{SEL}}}", "{{cache}} 1h")], "percentunit", 8, 0, 16,
              description="Recording rules cache:hit_ratio:rate5m and :rate1h (recording.yml)."),
        panel(3, "Operations per second by op", "timeseries", [
            (f"sum by (cache, op) (cache:operations:rate5m{{{SEL}}})", "{{cache}} {{op}}")], "ops", 0, 8,
              description="From the exact counters (the duration histograms are sampled)."),
        panel(4, "Latency p50 / p95 / p99 by op", "timeseries", [
            (f"cache:operation_latency_seconds:p50_5m{{{SEL}}}", "{{cache}} {{op}} p50"),
            (f"cache:operation_latency_seconds:p95_5m{{{SEL}}}", "{{cache}} {{op}} p95"),
            (f"cache:operation_latency_seconds:p99_5m{{{SEL}}}", "{{cache}} {{op}} p99")], "s", 12, 8),
        panel(5, "Evictions by reason", "timeseries", [
            (f"sum by (cache, reason) (rate(cachemeter_cache_evictions_total{{{SEL}}}[$__rate_interval]))",
             "{{cache}} {{reason}}")], "ops", 0, 16),
        panel(6, "Entries and bytes", "timeseries", [
            (f"sum by (cache) (cachemeter_cache_entries{{{SEL}}})", "{{cache}} entries"),
            (f"sum by (cache) (cachemeter_cache_bytes{{{SEL}}})", "{{cache}} bytes")], "short", 12, 16),
        panel(7, "Loads and load errors", "timeseries", [
            (f"sum by (cache, result) (rate(cachemeter_cache_loads_total{{{SEL}}}[$__rate_interval]))",
             "{{cache}} {{result}}"),
            (f"cache:load_error_ratio:rate5m{{{SEL}}}", "{{cache}} error ratio")], "short", 0, 24),
        panel(8, "Stale hits", "timeseries", [
            (f"sum by (cache) (rate(cachemeter_cache_stale_hits_total{{{SEL}}}[$__rate_interval]))", "{{cache}}")],
              "ops", 12, 24, description="get_or_load answered with an expired entry inside stale_ms."),
        panel(9, "Errors by op and kind", "timeseries", [
            (f"sum by (cache, op, kind) (rate(cachemeter_cache_errors_total{{{SEL}}}[$__rate_interval]))",
             "{{cache}} {{op}} {{kind}}")], "ops", 0, 32),
        panel(10, "Cross-process lock waits", "timeseries", [
            ("histogram_quantile(0.99, sum by (cache, le) (rate(cachemeter_lock_wait_duration_seconds_bucket"
             f"{{{SEL}}}[$__rate_interval])))", "{{cache}} wait p99"),
            (f"sum by (cache) (rate(cachemeter_lock_timeouts_total{{{SEL}}}[$__rate_interval]))", "{{cache}} timeouts/s")],
              "s", 12, 32, description="Redis and tiered-over-Redis caches only."),
        panel(11, "Circuit breaker state", "timeseries", [
            (f"max by (cache) (cachemeter_circuit_breaker_state{{{SEL}}})", "{{cache}}")], "short", 0, 40,
              description="0 closed, 1 open, 2 half-open (caches with a breaker)."),
        panel(12, "Circuit breaker transitions", "timeseries", [
            (f"sum by (cache) (increase(cachemeter_circuit_breaker_opens_total{{{SEL}}}[$__rate_interval]))",
             "{{cache}} opened"),
            (f"sum by (cache) (increase(cachemeter_circuit_breaker_closes_total{{{SEL}}}[$__rate_interval]))",
             "{{cache}} closed")], "short", 12, 40),
    ]
    variables = [
        variable("job", "label_values(cachemeter_cache_hits_total, job)", "job"),
        variable("instance", 'label_values(cachemeter_cache_hits_total{job=~"$job"}, instance)', "instance"),
        variable("cache", 'label_values(cachemeter_cache_hits_total{job=~"$job",instance=~"$instance"}, cache)',
                 "cache"),
        variable("backend", 'label_values(cachemeter_cache_hits_total{job=~"$job",cache=~"$cache"}, backend)',
                 "backend"),
    ]
    return dashboard("cachemeter-caches", "cachemeter: caches",
                     "Per cache and backend: hit ratio, throughput, latency, evictions, size, loads, errors, "
                     "locks and circuit breakers (needs dashboards/recording.yml).", panels, variables)


def endpoint():
    panels = [
        panel(1, "Requests by path and code", "timeseries", [
            (f"sum by (path, code) (rate(cachemeter_http_requests_total{{{EP}}}[$__rate_interval]))",
             "{{path}} {{code}}")], "reqps", 0, 0, 24),
        panel(2, "Request duration p50 / p99 by path", "timeseries", [
            ("histogram_quantile(0.5, sum by (path, le) (rate(cachemeter_http_request_duration_seconds_bucket"
             f"{{{EP}}}[$__rate_interval])))", "{{path}} p50"),
            ("histogram_quantile(0.99, sum by (path, le) (rate(cachemeter_http_request_duration_seconds_bucket"
             f"{{{EP}}}[$__rate_interval])))", "{{path}} p99")], "s", 0, 8),
        panel(3, "Auth failures", "timeseries", [
            (f'sum by (path) (rate(cachemeter_http_requests_total{{{EP},code=~"401|403"}}[$__rate_interval]))',
             "{{path}}")], "reqps", 12, 8, description="Requests refused by token= or basic_auth= (401)."),
    ]
    variables = [
        variable("job", "label_values(cachemeter_http_requests_total, job)", "job"),
        variable("instance", 'label_values(cachemeter_http_requests_total{job=~"$job"}, instance)', "instance"),
    ]
    return dashboard("cachemeter-endpoint", "cachemeter: endpoint",
                     "The embedded HTTP endpoint: scrapes by path and code, durations, auth failures.", panels,
                     variables)


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for name, board in (("cachemeter-caches.json", caches()), ("cachemeter-endpoint.json", endpoint())):
        text = json.dumps(board, indent=2, sort_keys=False) + "\n"
        path = os.path.join(HERE, name)
        if check:
            with open(path, encoding="utf-8") as f:
                if f.read() != text:
                    stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("stale (run dashboards/generate.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
