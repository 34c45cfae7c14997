# SPDX-License-Identifier: Apache-2.0
"""Exporters against a real StatsD daemon (docs/exporters.md; issue 16).

Etsy's statsd (tests/common/push_receivers.py) listens on a free 127.0.0.1
UDP port and flushes every 100 ms to a backend that appends what it aggregated
as JSON lines. Over several exporter flushes with changes between
them, the daemon's totals must equal the registry's: counters and the
histogram's _sum/_count exactly, its timer count (the weighted samples, one
per non-empty bucket) to 1e-6, gauges the last value, and no bad line.
"""
from __future__ import annotations

import math
import os
import socket
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from conftest import BOUND, poll  # noqa: E402
from push_receivers import StatsdDaemon  # noqa: E402

import cachemeter  # noqa: E402



@pytest.fixture
def statsd(tmp_path):
    d = StatsdDaemon(str(tmp_path))
    try:
        yield d
    finally:
        d.stop()


def test_counters_gauges_and_histograms_match_the_daemon_after_several_flushes(statsd):
    reg = cachemeter.Registry(const_labels={"env": "ci"})
    hits = reg.counter("app_hits", "Hits.", labels=("cache",))
    level = reg.gauge("app_level", "Level.", labels=("cache",))
    seconds = reg.histogram("app_seconds", "Time.", labels=("cache",), buckets=(0.001, 0.01, 0.1))
    exp = reg.export(f"statsd://127.0.0.1:{statsd.port}?tags=none&prefix=myapp", interval=0)
    observed = []
    for rnd in range(6):
        hits.labels("users").inc(rnd + 1)
        hits.labels("a:b|c@d#e,f").inc(0.5)  # hostile: must still be one valid line
        level.labels("users").set(-3.5 if rnd % 2 else 11)
        for i in range(rnd * 3 + 1):
            v = 0.0004 * (i + 1) * (rnd + 1)
            seconds.labels("users").observe(v)
            observed.append(v)
        exp.flush()
    # One bucket up by 20000 at once: a rate of 5e-05 that must reach the
    # daemon in plain decimal (it reads /^@([\d.]+)/).
    for _ in range(20000):
        seconds.labels("users").observe(0.05)
    observed.extend([0.05] * 20000)
    exp.flush()
    exp.flush()  # nothing changed: nothing sent
    exp.stop()

    base = ".env.ci.cache.users"  # const labels first
    want_hits = hits.labels("users").value
    want_count = len(observed)

    def matched():
        t = statsd.totals()
        c = t["counters"]
        return (c.get("myapp.app_hits_total" + base) == want_hits and
                c.get("myapp.app_seconds_count" + base) == want_count and t) or None

    t = poll(matched, BOUND * 3, "the daemon's totals reaching ours")
    c = t["counters"]
    assert c["myapp.app_hits_total" + base] == 21
    # Labels fold into the name in order: const labels first.
    assert c["myapp.app_hits_total.env.ci.cache.a_b_c_d_e_f"] == 3
    assert math.isclose(c["myapp.app_seconds_sum" + base], sum(observed), rel_tol=1e-9)
    assert c["myapp.app_seconds_count" + base] == want_count
    assert math.isclose(t["timer_count"]["myapp.app_seconds" + base], want_count, rel_tol=1e-6)
    assert t["gauges"]["myapp.app_level" + base] == -3.5  # round 5: a negative gauge set, not a decrement
    assert c.get("statsd.bad_lines_seen", 0) == 0, "the daemon rejected some of our lines"


def test_unix_datagram_socket_path(tmp_path):
    # The statsd+unix path with a real socket the test binds (the Datadog
    # agent's dsd.socket); lines checked by the daemon-independent rules.
    path = str(tmp_path / "dsd.socket")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.settimeout(BOUND)
    try:
        reg = cachemeter.Registry()
        c = reg.counter("jobs", "Jobs.", labels=("queue",))
        with reg.export(f"statsd+unix://{path}", interval=0) as exp:
            c.labels("mail").inc(4)
            exp.flush()
            assert rx.recv(65536) == b"jobs_total:4|c|#queue:mail"
    finally:
        rx.close()


def test_callback_form_and_context_manager():
    reg = cachemeter.Registry()
    c = reg.counter("jobs", "Jobs.")
    got = []
    with reg.export(got.extend, interval=0) as exp:
        c.inc(2)
        exp.flush()
        c.inc(3)
    assert not exp.running
    deltas = [s.value for s in got if s.name == "jobs_total"]
    assert deltas == [2, 3]  # the second came with the final flush at stop
    with pytest.raises(TypeError):
        reg.export(42)
    with pytest.raises(cachemeter.InvalidArgument, match="colour"):
        reg.export("statsd://127.0.0.1:9", colour="red")
