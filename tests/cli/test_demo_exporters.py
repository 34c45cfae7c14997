# SPDX-License-Identifier: Apache-2.0
"""`cachemeter demo` with the HTTP endpoint, a StatsD exporter and a
Pushgateway exporter on one registry (issue 16): when the run ends, all
three agree on every cache counter.

The demo runs with --linger: after its summary it flushes both exporters and
keeps the endpoint up until its standard input closes, so the test reads the
endpoint, the Pushgateway and the StatsD daemon's totals (each a real server
on a free 127.0.0.1 port) while the values are final.
CM_CLI names the program (CTest passes it)."""
import os
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from prom_server import http_get, wait_for  # noqa: E402
from lingering_demo import LingeringDemo  # noqa: E402
from push_receivers import Gateway, StatsdDaemon  # noqa: E402

CLI = os.environ.get("CM_CLI", "cachemeter")
BOUND_S = 60


def statsd_name(name, labels):
    # docs/exporters.md, tags=none: ".LABEL.VALUE" per label, other bytes '_'.
    clean = lambda s: re.sub(r"[^A-Za-z0-9_-]", "_", s)  # noqa: E731
    return name + "".join(f".{clean(k)}.{clean(v)}" for k, v in labels.items() if v)


def test_endpoint_statsd_and_pushgateway_agree_on_the_totals(tmp_path):
    statsd = StatsdDaemon(str(tmp_path))
    gw = Gateway(str(tmp_path))
    demo = None
    try:
        demo = LingeringDemo(CLI, "--seconds", "1.5", "--threads", "2", "--keys", "2000",
                             "--statsd", f"statsd://127.0.0.1:{statsd.port}?tags=none&interval_ms=200",
                             "--push", f"pushgateway://127.0.0.1:{gw.port}/metrics/job/demo?interval_ms=500").__enter__()
        port = demo.port
        text = http_get(f"http://127.0.0.1:{port}/metrics")[2].decode()
        ours = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name.startswith("cachemeter_cache_") and s.name.endswith("_total"):
                    ours[(s.name, tuple(s.labels.items()))] = s.value
        hits = [v for (n, _), v in ours.items() if n == "cachemeter_cache_hits_total"]
        assert len(hits) == 3 and all(v > 0 for v in hits), ours

        pushed = gw.samples("demo")
        for (name, labels), v in ours.items():
            key = (name, frozenset(dict(labels, job="demo", instance="").items()))
            got = pushed.get(key, pushed.get((name, frozenset(dict(labels, job="demo").items()))))
            assert got == v, f"pushgateway {name}{dict(labels)}: {got} != {v}"

        def statsd_agrees():
            c = statsd.totals()["counters"]
            diff = {statsd_name(n, dict(l)): (c.get(statsd_name(n, dict(l)), 0), v)
                    for (n, l), v in ours.items() if c.get(statsd_name(n, dict(l)), 0) != v}
            return (not diff, diff)
        wait_for("the StatsD daemon's totals to equal the endpoint's", statsd_agrees, BOUND_S)
        assert statsd.totals()["counters"].get("statsd.bad_lines_seen", 0) == 0

        assert demo.close() == 0, demo.proc.stderr.read()
    finally:
        if demo is not None:
            demo.close()
        statsd.stop()
        gw.stop()
