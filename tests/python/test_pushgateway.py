# SPDX-License-Identifier: Apache-2.0
"""The Pushgateway exporter against Debian's real prometheus-pushgateway, and a
real Prometheus scraping it with honor_labels (docs/exporters.md; issue 16).

- The values the gateway holds (parsed by prometheus_client) and the values
  Prometheus answers for them equal the registry's.
- The grouping key: a label value with '/' goes through the @base64 form.
- The gateway is SIGKILLed mid-run: a flush fails (Unavailable), the registry
  keeps counting; restarted on the same port (no persistence: it forgot the
  group), the next push succeeds and the values are right.
- delete_on_stop removes the group when the exporter stops.
- pushgateway+https with basic_auth and ca_file against a gateway serving TLS
  and requiring basic auth (--web.config.file); a bearer token= reaches our
  own endpoint (which requires one).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from prom_server import Prometheus, wait_for  # noqa: E402
from push_receivers import Gateway  # noqa: E402

import cachemeter  # noqa: E402

BOUND_S = 60


def test_values_reach_the_gateway_and_prometheus_and_survive_a_gateway_restart(tmp_path):
    gw = Gateway(str(tmp_path))
    prom = None
    try:
        prom = Prometheus(gw.port, str(tmp_path), job="pushgateway", honor_labels=True)
        reg = cachemeter.Registry(const_labels={"env": "ci"})
        jobs = reg.counter("app_jobs", "Jobs done.", labels=("queue",))
        level = reg.gauge("app_level", "Level.")
        lat = reg.histogram("app_seconds", "Latency.", buckets=(0.1, 1.0))
        uri = (f"pushgateway://127.0.0.1:{gw.port}/metrics/job/batch/instance/host%2F7"
               "?interval_ms=0&delete_on_stop=true&timeout_ms=2000")
        exp = reg.export(uri)
        group = {("job", "batch"), ("instance", "host/7"), ("env", "ci")}

        jobs.labels("mail").inc(5)
        level.set(-2.5)
        for v in (0.05, 0.5, 3):
            lat.observe(v)
        exp.flush()
        got = gw.samples("batch")
        assert got[("app_jobs_total", frozenset(group | {("queue", "mail")}))] == 5
        assert got[("app_level", frozenset(group))] == -2.5
        assert got[("app_seconds_count", frozenset(group))] == 3
        buckets = {float(dict(k[1])["le"]): v for k, v in got.items() if k[0] == "app_seconds_bucket"}
        assert buckets == {0.1: 1, 1.0: 2, float("inf"): 3}
        assert abs(got[("app_seconds_sum", frozenset(group))] - 3.55) < 1e-12

        # Prometheus scraping the gateway answers our values, our labels kept.
        def prom_has():
            r = prom.query('app_jobs_total{job="batch",queue="mail"}')
            return (r and list(r.values()) == [5.0], r)
        wait_for("Prometheus to scrape the pushed counter", prom_has, BOUND_S)
        r = prom.query('app_jobs_total{job="batch"}')
        assert set(next(iter(r))) >= group

        # The gateway dies; pushes fail while the registry keeps counting.
        gw.kill()
        jobs.labels("mail").inc(2)
        with pytest.raises(cachemeter.Unavailable):
            exp.flush()
        jobs.labels("mail").inc(1)
        gw = Gateway(str(tmp_path), port=gw.port)  # forgot everything (no persistence)
        assert gw.samples("batch") == {}
        exp.flush()
        got = gw.samples("batch")
        assert got[("app_jobs_total", frozenset(group | {("queue", "mail")}))] == 8
        assert got[("app_level", frozenset(group))] == -2.5

        def prom_has_8():
            r = prom.query('app_jobs_total{job="batch",queue="mail"}')
            return (r and list(r.values()) == [8.0], r)
        wait_for("Prometheus to see the value pushed after the restart", prom_has_8, BOUND_S)

        text = reg.render()
        assert 'cachemeter_exporter_sends_total{env="ci",exporter="pushgateway",result="error"} 1' in text
        assert 'cachemeter_exporter_sends_total{env="ci",exporter="pushgateway",result="ok"} 2' in text

        exp.stop()  # delete_on_stop: the group goes
        # The gateway answers a DELETE with 202 and applies it from a queue
        # (its README: "merely queued"), so the group goes soon after, not at
        # once: wait for it with a bound.
        def group_gone():
            left = gw.samples("batch")
            return (left == {}, left)
        wait_for("the gateway to drop the deleted group", group_gone, BOUND_S)
    finally:
        if prom is not None:
            prom.stop()
        gw.stop()


def test_bad_pushgateway_uris():
    reg = cachemeter.Registry()
    for uri, says in [
        ("pushgateway://127.0.0.1:9091/metrics", "/metrics/job/<job>"),
        ("pushgateway://127.0.0.1:9091/metrics/job/x/odd", "/metrics/job/<job>"),
        ("pushgateway://127.0.0.1:9091/metrics/job/x/bad-label/v", "grouping label"),
        ("pushgateway://127.0.0.1:9091/metrics/job/x?method=patch", "method="),
        ("pushgateway://127.0.0.1:9091/metrics/job/x?basic_auth=nocolon", "basic_auth="),
        ("pushgateway://127.0.0.1:9091/metrics/job/x?colour=red", "colour"),
    ]:
        with pytest.raises(cachemeter.InvalidArgument, match=says):
            reg.export(uri)


def test_a_refused_push_is_a_backend_error_naming_the_status(tmp_path):
    # The gateway refuses (400) a push that would make its exposition
    # inconsistent: one group has clash_total as a counter, another pushes a
    # gauge of that name.
    gw = Gateway(str(tmp_path))
    try:
        a = cachemeter.Registry()
        a.counter("clash", "C.").inc()
        with a.export(f"pushgateway://127.0.0.1:{gw.port}/metrics/job/a?interval_ms=0") as ea:
            ea.flush()
            b = cachemeter.Registry()
            b.gauge("clash_total", "G.").set(1)
            eb = b.export(f"pushgateway://127.0.0.1:{gw.port}/metrics/job/b?interval_ms=0")
            with pytest.raises(cachemeter.BackendError, match="answered 400"):
                eb.flush()
            eb.stop()
    finally:
        gw.stop()


def test_https_with_basic_auth_and_a_ca_file(tmp_path):
    bcrypt = pytest.importorskip("bcrypt", reason="python3-bcrypt (scripts/setup.sh installs it)")
    crt, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    hashed = bcrypt.hashpw(b"s3cret pass", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n"
                   f"basic_auth_users:\n  alice: {hashed}\n")
    gw = Gateway(str(tmp_path), web_config=str(web), ca=str(crt), auth=("alice", "s3cret pass"))
    try:
        reg = cachemeter.Registry()
        reg.counter("secure_jobs", "Jobs.").inc(3)
        base = f"pushgateway+https://127.0.0.1:{gw.port}/metrics/job/secure?interval_ms=0&timeout_ms=5000"
        with reg.export(base + f"&basic_auth=alice:s3cret%20pass&ca_file={crt}") as exp:
            exp.flush()
        assert gw.samples("secure")[("secure_jobs_total", frozenset({("job", "secure"), ("instance", "")}))] == 3
        with reg.export(base + f"&basic_auth=alice:wrong&ca_file={crt}&name=wrong") as exp:
            with pytest.raises(cachemeter.BackendError, match="answered 401"):
                exp.flush()
        with reg.export(base + "&basic_auth=alice:s3cret%20pass&name=noca") as exp:
            with pytest.raises(cachemeter.Unavailable, match="(?i)certificate"):
                exp.flush()
    finally:
        gw.stop()


def test_a_bearer_token_and_the_body_as_a_receiver_sees_them():
    # A plain HTTP server of the test records what arrives (the Pushgateway
    # itself takes no bearer tokens): the header, the content type, the body.
    import http.server
    import threading

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("Authorization"), self.headers.get("Content-Type"), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        reg = cachemeter.Registry()
        reg.counter("jobs", "Jobs.").inc(2)
        uri = f"pushgateway://127.0.0.1:{srv.server_address[1]}/metrics/job/x/path/a%2Fb/empty/?interval_ms=0&token=t0ken"
        with reg.export(uri) as exp:
            exp.flush()
        path, auth, ctype, body = seen[0]
        assert path == "/metrics/job/x/path@base64/YS9i/empty@base64/="
        assert auth == "Bearer t0ken"
        assert ctype == "text/plain; version=0.0.4; charset=utf-8"
        assert b"\njobs_total 2\n" in body
    finally:
        srv.shutdown()
        srv.server_close()
