# SPDX-License-Identifier: Apache-2.0
"""Shared registries from Python (docs/multiprocess.md; issue 15).

A ``Registry(shared=DIR)`` made before ``os.fork()`` (gunicorn --preload),
children counting in threads, an ``@cached`` function called in every
process: the parent's ``render()`` shows the whole pool, exactly, parsed by
prometheus_client's parser. Children report through their exit status.
"""
from __future__ import annotations

import os
import threading
import time
import traceback

import pytest
from prometheus_client.parser import text_string_to_metric_families

import cachemeter

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads, on purpose


def samples(reg):
    """{(name, frozenset(labels)): value} of reg.render()."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(reg.render()) for s in fam.samples}


def run_children(n, body, tmp_path):
    """Forks n children running body(i); fails with a child's traceback."""
    pids = []
    for i in range(n):
        err = tmp_path / f"child{i}.err"
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                body(i)
                code = 0
            except BaseException:  # noqa: BLE001 - reported through the file and the exit status
                err.write_text(traceback.format_exc())
            finally:
                os._exit(code)
        pids.append((pid, err))
    deadline = time.monotonic() + 60
    for pid, err in pids:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail(f"child {pid} hung")
            time.sleep(0.005)
        assert os.waitstatus_to_exitcode(status) == 0, err.read_text() if err.exists() else status


def test_children_of_a_preloaded_registry_count_into_the_pool(tmp_path):
    reg = cachemeter.Registry(shared=tmp_path / "metrics", max_workers=8)
    requests = reg.counter("requests", "Requests.", labels=["worker"])
    total = reg.counter("all_requests", "Requests.")
    total.inc()

    def child(i):
        def work():
            for _ in range(1000):
                total.inc()
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        requests.labels(str(i)).inc(5)

    run_children(3, child, tmp_path)
    got = samples(reg)
    assert got[("all_requests_total", frozenset())] == 1 + 3 * 2 * 1000
    for i in range(3):
        assert got[("requests_total", frozenset({("worker", str(i))}))] == 5
    assert total.value == 1  # a series' own value: this process's share
    reg.close()


def test_cached_hits_and_misses_add_up_over_workers(tmp_path):
    reg = cachemeter.Registry(shared=tmp_path / "metrics")
    calls = []

    @cachemeter.cached(registry=reg, name="square")
    def square(x):
        calls.append(x)
        return x * x

    def child(i):
        assert square(i) == i * i  # a miss: each worker has its own memory:// cache
        assert square(i) == i * i  # a hit

    run_children(4, child, tmp_path)
    got = samples(reg)
    key = frozenset({("cache", "square"), ("backend", "memory")})
    assert got[("cachemeter_cache_misses_total", key)] == 4
    assert got[("cachemeter_cache_hits_total", key)] == 4
    reg.close()


def test_gauge_modes_per_family(tmp_path):
    d = tmp_path / "metrics"
    a = cachemeter.Registry(shared=d)
    b = cachemeter.Registry(shared=d)
    a.gauge("peak", mode="max").set(3)
    b.gauge("peak", mode="max").set(5)
    a.gauge("inflight").set(3)  # the registry's gauge_mode: livesum
    b.gauge("inflight").set(5)
    got = samples(a)
    assert got[("peak", frozenset())] == 5
    assert got[("inflight", frozenset())] == 8
    with pytest.raises(cachemeter.AlreadyExists):
        b.gauge("peak", mode="min")
    with pytest.raises(cachemeter.InvalidArgument):
        a.gauge("other", mode="average")
    b.close()
    a.close()


def test_a_sidecar_view_and_the_slot_limit(tmp_path):
    d = tmp_path / "metrics"
    a = cachemeter.Registry(shared=d, max_workers=1)
    a.counter("n").inc(2)
    with pytest.raises(cachemeter.LimitExceeded):
        cachemeter.Registry(shared=d, max_workers=1)
    local = cachemeter.Registry(shared=d, max_workers=1, shared_fallback="local")
    local.counter("n").inc(3)
    assert samples(local)[("n_total", frozenset())] == 3
    view = cachemeter.Registry(shared=d, shared_readonly=True)
    assert samples(view)[("n_total", frozenset())] == 2
    with pytest.raises(cachemeter.StateError):
        view.counter("other")
    for r in (view, local, a):
        r.close()
