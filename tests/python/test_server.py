# SPDX-License-Identifier: Apache-2.0
"""The embedded HTTP endpoint started from Python, scraped with urllib:
/metrics (values read back), /metrics.json, bearer-token and basic auth
(401 without), bad options, an address in use, and a stop that closes the
port."""
from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import cachemeter
from conftest import BOUND, needs_http

pytestmark = needs_http


def get(url, headers=None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=BOUND) as r:
        return r.status, r.headers, r.read().decode()


def test_scrape(registry):
    registry.counter("requests", "Requests.", labels=("code",)).labels("200").inc(5)
    with cachemeter.Cache("memory://", "pages", registry=registry) as c:
        c.set("a", b"1")
        c.get("a")
        with cachemeter.Server(registry) as srv:
            assert srv.port > 0 and srv.url == f"http://127.0.0.1:{srv.port}"
            status, headers, body = get(srv.url + "/metrics")
            assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
            values = {(s.name, tuple(sorted(s.labels.items()))): s.value
                      for fam in text_string_to_metric_families(body) for s in fam.samples}
            assert values[("requests_total", (("code", "200"),))] == 5.0
            assert values[("cachemeter_cache_hits_total", (("backend", "memory"), ("cache", "pages")))] == 1.0
            status, _, body = get(srv.url + "/metrics.json")
            assert status == 200 and json.loads(body)
            status, _, body = get(srv.url + "/metrics", {"Accept": "application/openmetrics-text"})
            assert body.endswith("# EOF\n")


def test_token_auth(registry):
    with cachemeter.Server(registry, token="s3cret") as srv:
        with pytest.raises(urllib.error.HTTPError) as e:
            get(srv.url + "/metrics")
        assert e.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as e:
            get(srv.url + "/metrics", {"Authorization": "Bearer wrong"})
        assert e.value.code == 401
        assert get(srv.url + "/metrics", {"Authorization": "Bearer s3cret"})[0] == 200


def test_basic_auth_and_options(registry):
    with cachemeter.Server(registry, listen=":0", basic_auth=("user", "p&ss=:%"), threads=2, max_conns=8,
                           timeout_s=5) as srv:
        with pytest.raises(urllib.error.HTTPError) as e:
            get(srv.url + "/metrics")
        assert e.value.code == 401
        cred = base64.b64encode(b"user:p&ss=:%").decode()
        assert get(srv.url + "/metrics", {"Authorization": f"Basic {cred}"})[0] == 200


def test_bad_options_and_addresses(registry):
    with pytest.raises(cachemeter.InvalidArgument, match="colour"):
        cachemeter.Server(registry, colour="red")
    with pytest.raises(cachemeter.InvalidArgument):
        cachemeter.Server(registry, listen="not an address")
    with cachemeter.Server(registry) as first:
        with pytest.raises(cachemeter.Unavailable):
            cachemeter.Server(registry, listen=f"127.0.0.1:{first.port}")


def test_stop_closes_the_port(registry):
    srv = cachemeter.Server(registry)
    port = srv.port
    assert get(srv.url + "/health")[0] == 200
    srv.stop()
    srv.stop()  # idempotent
    assert not srv.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=BOUND).close()


def test_server_keeps_its_registry_alive():
    reg = cachemeter.Registry()
    reg.counter("kept").inc(3)
    srv = cachemeter.Server(reg)
    reg.close()
    del reg
    assert "kept_total 3" in get(srv.url + "/metrics")[2]
    srv.stop()


def test_dashboard_page_option_and_auth(registry):
    import base64
    import urllib.error
    import urllib.request

    def get(url, auth=None):
        req = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(auth).decode()}
                                     if auth else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    with cachemeter.Server(registry, basic_auth="ops:pw") as srv:  # dashboard=on by default
        assert get(srv.url + "/")[0] == 401                         # the same auth as /metrics
        status, headers, body = get(srv.url + "/", b"ops:pw")
        assert status == 200 and b"dashboard.js" in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert get(srv.url + "/dashboard.js", b"ops:pw")[0] == 200
    with cachemeter.Server(registry, dashboard=False) as srv:
        status, headers, body = get(srv.url + "/")
        assert status == 200 and b"dashboard.js" not in body and b"metrics.json" in body  # the plain index
        assert get(srv.url + "/dashboard.js")[0] == 404
