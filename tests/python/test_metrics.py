# SPDX-License-Identifier: Apache-2.0
"""Registry, families and series from Python: options, labels, updates,
exposition (read back with prometheus_client's parsers), timers, reset,
limits, lifetimes, and persistence across two /usr/bin/python3 processes."""
from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

import cachemeter
from conftest import needs_sqlite


def samples(text: str, parser=parse_text) -> dict:
    """{(sample name, frozenset(labels)): value} of an exposition."""
    return {(s.name, frozenset(s.labels.items())): s.value for fam in parser(text) for s in fam.samples}


def test_counter_with_labels(registry):
    requests = registry.counter("http_requests", "Requests served.", labels=("path", "code"))
    ok = requests.labels("/users", "200")
    ok.inc()
    ok.inc(2.5)
    ok.inc(v=0.5)
    assert requests.labels(path="/users", code="200") is ok  # one series object per label values
    requests.labels("/users", 404).inc()  # values go through str()
    assert ok.value == 4.0
    assert ok.label_values == ("/users", "200")
    got = samples(registry.render())
    assert got[("http_requests_total", frozenset({"path": "/users", "code": "200"}.items()))] == 4.0
    assert got[("http_requests_total", frozenset({"path": "/users", "code": "404"}.items()))] == 1.0


def test_counter_rejects_negative_and_nan_but_counts_them(registry):
    c = registry.counter("jobs")
    c.inc(3)
    for bad in (-1, float("nan")):
        with pytest.raises(cachemeter.InvalidArgument, match="negative or NaN") as e:
            c.inc(bad)
        assert isinstance(e.value, ValueError)
    assert c.value == 3.0
    got = samples(registry.render())
    assert got[("cachemeter_invalid_observations_total", frozenset())] == 2.0


def test_labelless_families_update_directly(registry):
    c = registry.counter("events_total", "Events.")
    c.inc()
    c.inc(4)
    assert c.value == 5.0
    g = registry.gauge("temperature", "Degrees.")
    g.set(20)
    g.inc()
    g.dec(0.5)
    g.add(-1.5)
    assert g.value == 19.0
    h = registry.histogram("size_bytes", "Sizes.", buckets=(10, 100))
    for v in (5, 50, 500):
        h.observe(v)
    assert (h.count, h.sum, h.value) == (3.0, 555.0, 3.0)
    got = samples(registry.render())
    assert got[("size_bytes_bucket", frozenset({"le": "10.0"}.items()))] == 1.0
    assert got[("size_bytes_bucket", frozenset({"le": "100.0"}.items()))] == 2.0
    assert got[("size_bytes_bucket", frozenset({"le": "+Inf"}.items()))] == 3.0


def test_labelled_family_needs_labels(registry):
    c = registry.counter("hits", labels=("cache",))
    with pytest.raises(cachemeter.InvalidArgument, match="call .labels"):
        c.inc()
    with pytest.raises(cachemeter.InvalidArgument, match="label values"):
        c.labels("a", "b")
    with pytest.raises(cachemeter.InvalidArgument, match="do not match"):
        c.labels(shard="a")
    with pytest.raises(TypeError):
        c.labels("a", cache="a")
    with pytest.raises(TypeError, match="not a string"):
        registry.counter("other", labels="cache")


def test_gauge_series_and_helpers(registry):
    g = registry.gauge("inflight", labels=("op",))
    s = g.labels("get")
    s.set(10)
    s.add(2)
    s.dec(3)
    s.inc()
    assert s.value == 10.0
    with s.track_inprogress():
        assert s.value == 11.0
    assert s.value == 10.0

    @s.track_inprogress()
    def work():
        return s.value

    assert work() == 11.0
    s.set(float("inf"))  # gauges take any double
    assert s.value == math.inf
    s.set_to_current_time()
    assert s.value > 1.6e9


def test_histogram_time_as_context_manager_and_decorator(registry):
    h = registry.histogram("op_seconds", "Latency.", labels=("op",), buckets=(0.001, 10))
    s = h.labels("get")
    with s.time():
        pass
    assert s.count == 1.0

    @s.time()
    def f(x):
        return x + 1

    assert [f(i) for i in range(3)] == [1, 2, 3]
    assert s.count == 4.0
    assert 0 <= s.sum < 10

    @s.time()
    def fails():
        raise KeyError("x")

    with pytest.raises(KeyError):
        fails()
    assert s.count == 5.0  # timed even when it raises
    with pytest.raises(cachemeter.InvalidArgument):
        s.observe(float("nan"))
    assert s.count == 5.0


def test_registration_is_idempotent_and_checked(registry):
    a = registry.counter("requests", "Help.", labels=("code",))
    assert registry.counter("requests_total", labels=("code",)) is a  # same family, both spellings
    with pytest.raises(cachemeter.AlreadyExists) as e:
        registry.counter("requests", labels=("path",))
    assert e.value.status == cachemeter._core.CM_EEXIST and e.value.name == "CM_EEXIST"
    assert "requests" in str(e.value)
    with pytest.raises(cachemeter.AlreadyExists):
        registry.gauge("requests_total")
    with pytest.raises(cachemeter.InvalidArgument, match="not a valid metric name"):
        registry.gauge("1abc")
    with pytest.raises(cachemeter.InvalidArgument):
        registry.histogram("h", buckets=(2, 1))  # not increasing
    with pytest.raises(cachemeter.InvalidArgument):
        registry.counter("x", labels=("le", "le"))


def test_registry_options(tmp_path):
    labels = {"env": "prod,eu:1&x=%", "svc": "api"}
    with cachemeter.Registry(prefix="myapp_cache_", const_labels=labels, max_series=3) as reg:
        assert reg.prefix == "myapp_cache_"
        c = reg.counter("calls", labels=("n",))
        c.labels("1").inc()
        c.labels("2").inc()
        c.labels("3").inc()
        with pytest.raises(cachemeter.LimitExceeded):
            c.labels("4")
        got = samples(reg.render())
        assert got[("calls_total", frozenset({**labels, "n": "1"}.items()))] == 1.0
        # the registry's own metrics carry the prefix
        assert any(name.startswith("myapp_cache_series_rejected") for name, _ in got)
    with pytest.raises(cachemeter.InvalidArgument, match="max_series"):
        cachemeter.Registry(max_series=0)
    with pytest.raises(cachemeter.InvalidArgument):
        cachemeter.Registry(prefix="not a prefix")


def test_render_formats_read_back(registry):
    c = registry.counter("bytes_sent", "Bytes.", labels=("peer",))
    c.labels('we"ird\\va\nlue').inc(7)
    registry.histogram("lat", buckets=(1,)).observe(0.5)
    text = samples(registry.render("prometheus"))
    om = samples(registry.render("openmetrics"), parse_openmetrics)
    key = ("bytes_sent_total", frozenset({"peer": 'we"ird\\va\nlue'}.items()))
    assert text[key] == om[key] == 7.0
    assert registry.render("openmetrics").endswith("# EOF\n")
    doc = json.loads(registry.render("json"))
    assert "bytes_sent_total" in json.dumps(doc)
    with pytest.raises(cachemeter.InvalidArgument, match="unknown format"):
        registry.render("xml")


def test_reset_zeroes_and_keeps_handles(registry):
    c = registry.counter("n")
    c.inc(5)
    registry.reset()
    assert c.value == 0.0
    c.inc()
    assert c.value == 1.0


def test_default_registry_is_a_singleton_and_survives_close():
    d = cachemeter.Registry.default()
    assert cachemeter.Registry.default() is d
    c = d.counter("py_default_registry_test", labels=("k",))
    c.labels("a").inc()
    d.close()  # no-op on the default registry
    assert not d.closed
    assert "py_default_registry_test_total" in d.render()
    with pytest.raises(cachemeter.InvalidArgument, match="default registry"):
        d.persist("/tmp/never.db")


def test_closed_registry_refuses_calls_but_its_series_stay_valid():
    reg = cachemeter.Registry()
    s = reg.counter("kept", labels=("a",)).labels("x")
    inc = s.inc  # the bound C call keeps the C registry alive too
    reg.close()
    reg.close()  # idempotent
    assert reg.closed
    with pytest.raises(cachemeter.StateError, match="closed"):
        reg.render()
    with pytest.raises(cachemeter.StateError):
        reg.counter("new")
    del s
    gc.collect()
    inc(2)  # no use-after-free: the series' handle holds the registry
    inc()


def test_flush_without_persist_is_a_state_error(registry):
    with pytest.raises(cachemeter.StateError) as e:
        registry.flush()
    assert e.value.status == cachemeter._core.CM_ESTATE


SCRIPT = textwrap.dedent("""
    import json, sys
    import cachemeter
    path, mode = sys.argv[1], sys.argv[2]
    reg = cachemeter.Registry()
    if mode == "write":
        reg.persist(path, interval=0)
        reqs = reg.counter("requests", "Requests.", labels=("code",))
        reqs.labels("200").inc(41)
        reqs.labels("200").inc()
        reqs.labels("500").inc(3)
        lat = reg.histogram("latency_seconds", buckets=(0.1, 1.0))
        for v in (0.05, 0.5, 5.0):
            lat.observe(v)
        reg.close()  # flushes
    elif mode == "continue":
        reg.persist(path, interval=0)  # restores into families registered later
        reqs = reg.counter("requests", "Requests.", labels=("code",))
        reqs.labels("200").inc()
        print(json.dumps({"200": reqs.labels("200").value, "500": reqs.labels("500").value,
                          "latency_count": reg.histogram("latency_seconds", buckets=(0.1, 1.0)).count}))
        reg.close()
    else:
        reg.load(path)
        print(reg.render())
""")


@needs_sqlite
def test_persistence_across_two_processes(tmp_path):
    db = tmp_path / "metrics.db"
    script = tmp_path / "proc.py"
    script.write_text(SCRIPT)

    def run(mode):
        r = subprocess.run([sys.executable, str(script), str(db), mode], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    run("write")
    got = samples(run("load"))
    assert got[("requests_total", frozenset({"code": "200"}.items()))] == 42.0
    assert got[("requests_total", frozenset({"code": "500"}.items()))] == 3.0
    assert got[("latency_seconds_count", frozenset())] == 3.0
    assert got[("latency_seconds_bucket", frozenset({"le": "1.0"}.items()))] == 2.0
    assert json.loads(run("continue")) == {"200": 43.0, "500": 3.0, "latency_count": 3.0}
    assert samples(run("load"))[("requests_total", frozenset({"code": "200"}.items()))] == 43.0


@needs_sqlite
def test_persist_errors(tmp_path, registry):
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"this is not a sqlite file" * 100)
    with pytest.raises(cachemeter.Corrupt):
        registry.persist(foreign)
    assert foreign.read_bytes() == b"this is not a sqlite file" * 100  # untouched
    with pytest.raises(cachemeter.Unavailable):
        registry.persist(tmp_path / "no" / "such" / "dir" / "m.db")
    with pytest.raises(cachemeter.InvalidArgument):
        registry.persist(tmp_path, interval=1)  # a directory
    with pytest.raises(cachemeter.InvalidArgument):
        registry.persist(tmp_path / "m.db", interval=-1)
    registry.persist(tmp_path / "m.db", interval=0.05)
    with pytest.raises(cachemeter.StateError, match="already"):
        registry.persist(tmp_path / "other.db")
    with cachemeter.Registry() as other:  # the file is owned by `registry`
        with pytest.raises(cachemeter.StateError):
            other.persist(tmp_path / "m.db")
    registry.flush()
