# SPDX-License-Identifier: Apache-2.0
"""The embedded HTTP endpoint over real sockets.

Each test starts its own cm_http_fixture process (CM_HTTP_FIXTURE) on a free
127.0.0.1 port, drives its metrics through stdin, and checks what HTTP clients
see: every endpoint, negotiation, gzip, name[] filters, auth, TLS, listen
addresses, self-metrics, and abuse the server must survive. Every process is
stopped at teardown; a clean one must exit 0 without sanitizer reports (the
ASan build runs this suite too). Run by CTest (http.endpoint):
  CM_HTTP_FIXTURE=<cm_http_fixture> /usr/bin/python3 -m pytest -q tests/http/test_endpoint.py
"""
import base64
import gzip
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
BOUND = 10.0  # seconds: the generous bound on anything that should take milliseconds


# ---- the fixture process ------------------------------------------------------

class Fixture:
    """One cm_http_fixture process: its port, a line-oriented stdin/stdout, its stderr."""

    def __init__(self, binary, args, tmp_path, n):
        self.stderr_path = tmp_path / f"fixture{n}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([binary, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, bufsize=1)
        self._lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = None

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of output

    def line(self, timeout=BOUND):
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the fixture said nothing for {timeout} s") from None

    def wait_port(self):
        first = self.line()
        assert first is not None and first.startswith("PORT "), f"no PORT line: {first!r}; stderr: {self.stderr()}"
        self.port = int(first.split()[1])
        assert 0 < self.port < 65536
        return self

    def cmd(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        answer = self.line()
        assert answer == "OK", f"{text!r} -> {answer!r}"

    def stderr(self):
        self._stderr.flush()
        return self.stderr_path.read_text("utf-8", "replace")

    def wait_exit(self, timeout=BOUND):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the fixture did not exit within {timeout} s") from None

    def quit(self, timeout=BOUND):
        """Sends quit; returns (exit code, seconds it took)."""
        t0 = time.monotonic()
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        rc = self.wait_exit(timeout)
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        for f in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


@pytest.fixture(scope="session")
def binary():
    path = os.environ.get("CM_HTTP_FIXTURE")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("CM_HTTP_FIXTURE must name the cm_http_fixture binary")
    return path


@pytest.fixture
def spawn(binary, tmp_path):
    """spawn(*args) -> a started Fixture (not waited on). Teardown stops each one;
    a fixture still running must then exit 0 without sanitizer reports."""
    started = []

    def make(*args):
        f = Fixture(binary, args, tmp_path, len(started))
        started.append(f)
        return f
    yield make
    problems = []
    for f in started:
        was_running = f.proc.poll() is None
        try:
            if was_running:
                rc, _ = f.quit()
                if rc != 0:
                    problems.append(f"fixture exited {rc} at teardown")
            err = f.stderr()
            for mark in SANITIZER_MARKS:
                if mark in err:
                    problems.append(f"sanitizer report in the fixture's stderr:\n{err}")
                    break
        except AssertionError as e:
            problems.append(str(e))
        finally:
            f.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def start(spawn):
    """start(options=None, listen=None) -> a serving Fixture (its port known)."""
    def make(options=None, listen=None):
        args = []
        if listen is not None:
            args += ["--listen", listen]
        if options is not None:
            args += ["--options", options]
        return spawn(*args).wait_port()
    return make


@pytest.fixture
def server(start):
    return start()


def failed_start(fixture):
    """Waits for a fixture that must refuse to start; returns its stderr."""
    rc = fixture.wait_exit()
    out = fixture.line()
    assert out is None, f"a failed start printed {out!r}"
    assert rc == 1, f"exit {rc}, stderr: {fixture.stderr()}"
    return fixture.stderr()


# ---- HTTP helpers -------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name)

    @property
    def text(self):
        return self.body.decode("utf-8")


def request(port, path="/metrics", method="GET", headers=None, body=None, host="127.0.0.1", context=None):
    if context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=BOUND, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=BOUND)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def get_ok(port, path="/metrics", **kw):
    r = request(port, path, **kw)
    assert r.status == 200, f"GET {path}: {r.status} {r.body[:200]!r}"
    return r


def raw_exchange(port, payload, bound=BOUND, until_close=False):
    """Sends payload on a fresh connection and half-closes it; returns what the
    server sent once it has sent one whole response (with until_close: once it
    has closed) or closed the connection (a reset counts as closed). Fails if
    the server does neither within `bound` seconds."""
    s = socket.create_connection(("127.0.0.1", port), timeout=bound)
    data = b""
    try:
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError:  # the server gave up on us mid-send (reset, EPIPE, ENOTCONN): fine
            pass
        deadline = time.monotonic() + bound
        while not (not until_close and complete_response(data)):
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise AssertionError(f"the server neither answered nor closed within {bound} s; "
                                     f"got {data[:200]!r}") from None
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


def complete_response(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(body) >= int(v)
    return True


def status_of(raw):
    """The status code of a raw HTTP response, or None for no response."""
    if not raw:
        return None
    assert raw.startswith(b"HTTP/1."), f"not an HTTP response: {raw[:100]!r}"
    return int(raw.split(b" ", 2)[1])


def open_held(port, n, request_line=None):
    """n connected sockets; with request_line, each has been answered (so the
    server has accepted it) and is then held idle with keep-alive."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
            socks.append(s)
            if request_line:
                s.sendall(request_line)
        if request_line:
            for s in socks:
                head = read_head(s)
                assert head.startswith(b"HTTP/1.1 200"), head[:100]
    except BaseException:
        close_all(socks)
        raise
    return socks


def read_head(s, buf=None):
    """Reads one whole response (headers + Content-Length body) from a socket;
    returns its head. Bytes past it stay in buf (pass one buffer per socket to
    read pipelined responses)."""
    buf = bytearray() if buf is None else buf
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"connection closed mid-response: {bytes(buf)!r}"
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end - 4])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(buf) < end + length:
        chunk = s.recv(65536)
        assert chunk, "connection closed mid-body"
        buf += chunk
    del buf[:end + length]
    return head


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def closed_within(s, seconds):
    """True when the server closes (EOF or reset) s within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(min(left, 0.5))
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True


# ---- values -------------------------------------------------------------------

def samples(text, openmetrics=False):
    """{(sample name, sorted label items): value} of a text or OpenMetrics body."""
    parse = parse_openmetrics if openmetrics else parse_text
    out = {}
    for fam in parse(text):
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def type_names(text):
    """The family names of a text body, from its # TYPE lines, in order."""
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]


OBSERVATIONS = [0.02, 0.3, 7.0]


def drive(fx):
    """Drives known values through stdin; returns the samples they must give."""
    for c in ["add get 3", "add get 4", "add post 0.5", "set -12.75",
              *(f"observe {v!r}" for v in OBSERVATIONS),
              "cache_set alpha one", "cache_get alpha", "cache_get beta", "cache_get beta"]:
        fx.cmd(c)
    cache = (("backend", "memory"), ("cache", "fixture"))
    total = 0.0
    for v in OBSERVATIONS:
        total += v
    return {
        ("fixture_requests_total", (("method", "get"),)): 7.0,
        ("fixture_requests_total", (("method", "post"),)): 0.5,
        ("fixture_temperature_celsius", ()): -12.75,
        ("fixture_latency_seconds_count", ()): float(len(OBSERVATIONS)),
        ("fixture_latency_seconds_sum", ()): total,
        ("cachemeter_cache_hits_total", cache): 1.0,
        ("cachemeter_cache_misses_total", cache): 2.0,
        ("cachemeter_cache_sets_total", cache): 1.0,
        ("cachemeter_cache_entries", cache): 1.0,
    }


def assert_values(got, expected):
    for key, value in expected.items():
        assert key in got, f"{key} missing; have {sorted(k for k in got if k[0].startswith(key[0][:8]))}"
        assert got[key] == value, f"{key}: {got[key]!r} != {value!r}"
    buckets = {float(dict(labels)["le"]): v for (name, labels), v in got.items()
               if name == "fixture_latency_seconds_bucket"}
    assert len(buckets) >= 3 and float("inf") in buckets, buckets
    for le, count in buckets.items():
        assert count == sum(1 for v in OBSERVATIONS if v <= le), f"bucket le={le}: {count}"


def fixture_only(got):
    return {k: v for k, v in got.items() if k[0].startswith("fixture_")}


# ---- every endpoint -----------------------------------------------------------

def test_metrics_text_values(server):
    expected = drive(server)
    r = get_ok(server.port)
    assert r.header("Content-Type") == TEXT_TYPE
    assert r.header("Content-Encoding") is None
    assert int(r.header("Content-Length")) == len(r.body)
    assert_values(samples(r.text), expected)


def test_metrics_json_values(server):
    expected = drive(server)
    r = get_ok(server.port, "/metrics.json")
    assert r.header("Content-Type").startswith("application/json")
    doc = json.loads(r.body)
    fams = {f["name"]: f for f in doc["families"]}
    got = {}
    for name in ("fixture_requests_total", "fixture_temperature_celsius", "cachemeter_cache_hits_total",
                 "cachemeter_cache_misses_total", "cachemeter_cache_sets_total", "cachemeter_cache_entries"):
        for s in fams[name]["series"]:
            got[(name, tuple(sorted(s["labels"].items())))] = s["value"]
    lat = fams["fixture_latency_seconds"]
    assert lat["type"] == "histogram" and fams["fixture_requests_total"]["type"] == "counter"
    assert fams["fixture_requests_total"]["labels"] == ["method"]
    (series,) = lat["series"]
    got[("fixture_latency_seconds_count", ())] = series["count"]
    got[("fixture_latency_seconds_sum", ())] = series["sum"]
    for b in series["buckets"]:
        got[("fixture_latency_seconds_bucket", (("le", str(float(b["le"]))),))] = b["count"]
    assert [b["le"] for b in series["buckets"]] == [*lat["bounds"], "+Inf"]
    assert_values(got, expected)


def test_health(server):
    server.cmd("cache_set k v")
    r1 = get_ok(server.port, "/health")
    assert r1.header("Content-Type").startswith("application/json")
    assert r1.header("Cache-Control") == "no-store"
    doc = json.loads(r1.body)
    assert doc["status"] == "ok"
    assert isinstance(doc["uptime_seconds"], (int, float)) and 0 <= doc["uptime_seconds"] < 600
    assert doc["caches"] == [{"cache": "fixture", "backend": "memory", "healthy": True}]
    deadline = time.monotonic() + BOUND
    while True:  # uptime advances
        later = json.loads(get_ok(server.port, "/health").body)["uptime_seconds"]
        if later > doc["uptime_seconds"] or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert later > doc["uptime_seconds"]


def test_index_html(server):
    r = get_ok(server.port, "/")
    assert r.header("Content-Type").startswith("text/html")
    for target in ("metrics", "metrics.json", "health"):
        assert f'href="{target}"' in r.text
    assert r.text.lstrip().lower().startswith("<!doctype html>")


@pytest.mark.parametrize("path", ["/nope", "/metrics/", "/metricsx", "/health/x", "/METRICS", "//metrics"])
def test_unknown_path_is_404(server, path):
    r = request(server.port, path)
    assert r.status == 404
    assert b"not found" in r.body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/metrics", "/health", "/nope"])
def test_other_methods_are_405(server, method, path):
    r = request(server.port, path, method=method, body=b"x=1" if method in ("POST", "PUT") else None)
    assert r.status == 405
    assert r.header("Allow") == "GET, HEAD"


@pytest.mark.parametrize("path", ["/", "/metrics?name[]=fixture_requests_total",
                                  "/metrics.json?name[]=fixture_requests_total"])
def test_head(server, path):
    drive(server)
    got = get_ok(server.port, path)
    head = request(server.port, path, method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.header("Content-Type") == got.header("Content-Type")
    assert int(head.header("Content-Length")) == len(got.body) > 0
    # http.client never reads a HEAD body: check on the wire that none is sent.
    raw = raw_exchange(server.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
                       until_close=True)
    head_part, _, rest = raw.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 200") and rest == b""
    assert f"content-length: {len(got.body)}".encode() in head_part.lower()


# ---- content negotiation ------------------------------------------------------

@pytest.mark.parametrize("accept", [
    PROMETHEUS_ACCEPT,
    "application/openmetrics-text",
    "text/plain;q=0.5, application/openmetrics-text;q=0.6",
    "application/openmetrics-text; version=1.0.0; q=1, */*; q=0.9",
])
def test_openmetrics_when_preferred(server, accept):
    expected = drive(server)
    r = get_ok(server.port, headers={"Accept": accept})
    assert r.header("Content-Type") == OM_TYPE
    assert r.text.endswith("# EOF\n")
    got = samples(r.text, openmetrics=True)
    assert_values(got, expected)
    assert ("fixture_requests_created", (("method", "get"),)) in got


@pytest.mark.parametrize("accept", [
    None,
    "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5",
    "application/openmetrics-text;q=0.5,text/plain;q=0.5",  # a tie: text
    "text/plain",
    "*/*",
    "application/openmetrics-text;version=0.0.1",  # a version we do not speak
    "application/openmetrics-text;q=0",
])
def test_text_otherwise(server, accept):
    expected = drive(server)
    r = get_ok(server.port, headers={"Accept": accept} if accept else None)
    assert r.header("Content-Type") == TEXT_TYPE
    assert "# EOF" not in r.text
    assert_values(samples(r.text), expected)


# ---- gzip ---------------------------------------------------------------------

@pytest.mark.parametrize("encoding,compressed", [
    ("gzip", True),
    ("*", True),
    ("deflate, gzip;q=0.8", True),
    ("gzip;q=0", False),
    ("identity", False),
    ("gzip;q=0, *", False),
    (None, False),
])
def test_gzip(server, encoding, compressed):
    expected = drive(server)
    plain = get_ok(server.port, "/metrics?name[]=fixture_requests_total&name[]=fixture_latency_seconds"
                   "&name[]=fixture_temperature_celsius")
    headers = {"Accept-Encoding": encoding} if encoding else {}
    r = get_ok(server.port, "/metrics?name[]=fixture_requests_total&name[]=fixture_latency_seconds"
               "&name[]=fixture_temperature_celsius", headers=headers)
    if compressed:
        assert r.header("Content-Encoding") == "gzip"
        assert r.body[:2] == b"\x1f\x8b"
        body = gzip.decompress(r.body)
    else:
        assert r.header("Content-Encoding") is None
        body = r.body
    assert "Accept-Encoding" in r.header("Vary")
    assert int(r.header("Content-Length")) == len(r.body)
    assert body == plain.body
    assert fixture_only(samples(body.decode())) == fixture_only(samples(plain.text))
    assert_values(samples(body.decode()), {k: v for k, v in expected.items() if k[0].startswith("fixture_")})


def test_gzip_openmetrics_full_body(server):
    expected = drive(server)
    r = get_ok(server.port, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
    assert r.header("Content-Encoding") == "gzip" and r.header("Content-Type") == OM_TYPE
    text = gzip.decompress(r.body).decode()
    assert text.endswith("# EOF\n")
    assert_values(samples(text, openmetrics=True), expected)


# ---- name[] filters -----------------------------------------------------------

@pytest.mark.parametrize("query,families", [
    ("name[]=fixture_requests_total&name[]=fixture_latency_seconds",
     ["fixture_latency_seconds", "fixture_requests_total"]),
    ("name%5B%5D=fixture_requests_total&name%5B%5D=fixture_latency_seconds",
     ["fixture_latency_seconds", "fixture_requests_total"]),
    ("name[]=fixture_latency_seconds_bucket", ["fixture_latency_seconds"]),
    ("name[]=fixture_latency_seconds_count&name[]=fixture_latency_seconds_sum", ["fixture_latency_seconds"]),
    ("name[]=cachemeter_cache_hits_total", ["cachemeter_cache_hits_total"]),
    ("name[]=no_such_metric", []),
    ("name[]=fixture_requests", ["fixture_requests_total"]),  # its OpenMetrics family name
    ("name[]=fixture_requests_created", ["fixture_requests_total"]),
    ("name[]=fixture_temperature_celsius_count", []),  # a gauge has no _count
    ("name[]=FIXTURE_REQUESTS_TOTAL", []),
    ("name[]=", []),
])
def test_name_filter(server, query, families):
    expected = drive(server)
    r = get_ok(server.port, "/metrics?" + query)
    assert r.header("Content-Type") == TEXT_TYPE
    assert type_names(r.text) == families
    if not families:
        assert r.body == b""
    got = samples(r.text)
    assert {name for name, _ in got} <= {n + s for n in families for s in ("", "_bucket", "_sum", "_count")}
    assert len(got) >= len(families)
    for key, value in expected.items():
        if any(key[0] in (f, f + "_sum", f + "_count") for f in families):
            assert got[key] == value, key
    j = json.loads(get_ok(server.port, "/metrics.json?" + query).body)
    assert sorted(f["name"] for f in j["families"]) == families


def test_name_filter_values(server):
    expected = drive(server)
    r = get_ok(server.port, "/metrics?name[]=fixture_requests_total&name[]=fixture_latency_seconds"
               "&other=1&name[]=fixture_temperature_celsius")
    assert type_names(r.text) == ["fixture_latency_seconds", "fixture_requests_total", "fixture_temperature_celsius"]
    assert_values(samples(r.text), {k: v for k, v in expected.items() if k[0].startswith("fixture_")})


def test_no_filter_keeps_everything(server):
    drive(server)
    names = type_names(get_ok(server.port, "/metrics?other=1").text)
    for n in ("fixture_requests_total", "fixture_latency_seconds", "fixture_temperature_celsius",
              "cachemeter_cache_hits_total", "cachemeter_http_requests_total"):
        assert n in names
    assert names == sorted(names)


# ---- auth ---------------------------------------------------------------------

def basic(user_pass):
    return {"Authorization": "Basic " + base64.b64encode(user_pass.encode()).decode()}


@pytest.mark.parametrize("path", ["/metrics", "/metrics.json", "/health", "/"])
def test_token(start, path):
    fx = start("token=s3cret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer s3cre"},
                    {"Authorization": "Bearer s3cret2"}, {"Authorization": "Bearer "},
                    {"Authorization": "s3cret"}, basic("s3cret:s3cret")):
        r = request(fx.port, path, headers=headers)
        assert r.status == 401, headers
        assert r.header("WWW-Authenticate").startswith("Bearer"), headers
        assert b"cachemeter_" not in r.body
    for ok in ("Bearer s3cret", "bearer s3cret", "Bearer  s3cret "):
        r = get_ok(fx.port, path, headers={"Authorization": ok})
    if path == "/metrics":
        fx.cmd("add get 5")
        r = get_ok(fx.port, path, headers={"Authorization": "Bearer s3cret"})
        assert samples(r.text)[("fixture_requests_total", (("method", "get"),))] == 5


def test_basic_auth_percent_decoded(start):
    fx = start("basic_auth=user:pa%3Ass")
    r = request(fx.port)
    assert r.status == 401
    challenge = r.header("WWW-Authenticate")
    assert challenge.startswith("Basic") and 'realm="cachemeter"' in challenge
    for wrong in ("user:pa%3Ass", "user:pa", "user:pa:s", "User:pa:ss", "user:pa:ss ", "other:pa:ss", ":pa:ss"):
        assert request(fx.port, headers=basic(wrong)).status == 401, wrong
    assert request(fx.port, headers={"Authorization": "Basic !!!notbase64"}).status == 401
    assert request(fx.port, headers={"Authorization": "Bearer pa:ss"}).status == 401
    fx.cmd("set 21.5")
    r = get_ok(fx.port, headers=basic("user:pa:ss"))
    assert samples(r.text)[("fixture_temperature_celsius", ())] == 21.5


def test_token_and_basic_either_works(start):
    fx = start("token=s3cret&basic_auth=user:pw")
    r = request(fx.port)
    assert r.status == 401
    challenges = r.headers.get_all("WWW-Authenticate")
    assert sorted(c.split()[0] for c in challenges) == ["Basic", "Bearer"]
    get_ok(fx.port, headers={"Authorization": "Bearer s3cret"})
    get_ok(fx.port, headers=basic("user:pw"))
    assert request(fx.port, headers=basic("user:s3cret")).status == 401


def test_auth_off(server):
    for headers in ({}, {"Authorization": "Bearer anything"}, basic("a:b")):
        r = get_ok(server.port, headers=headers)
        assert r.header("WWW-Authenticate") is None


def test_401_and_405_are_counted(start):
    fx = start("token=s3cret")
    assert request(fx.port, "/health").status == 401
    assert request(fx.port, "/health", method="POST").status == 405
    got = samples(get_ok(fx.port, headers={"Authorization": "Bearer s3cret"}).text)
    assert got[("cachemeter_http_requests_total", (("code", "401"), ("path", "/health")))] == 1
    assert got[("cachemeter_http_requests_total", (("code", "405"), ("path", "/health")))] == 1


# ---- TLS ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def tls_options(crt, key):
    q = lambda p: urllib.parse.quote(str(p), safe="/")  # noqa: E731
    return f"tls_cert={q(crt)}&tls_key={q(key)}"


def test_tls(start, cert):
    crt, key = cert
    fx = start(tls_options(crt, key))
    expected = drive(fx)
    ctx = ssl.create_default_context(cafile=str(crt))
    r = get_ok(fx.port, context=ctx)
    assert r.header("Content-Type") == TEXT_TYPE
    assert_values(samples(r.text), expected)
    # Plain HTTP to the TLS port gets no HTTP answer (and does not hang).
    t0 = time.monotonic()
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        request(fx.port)
    assert time.monotonic() - t0 < BOUND
    # An unverifiable server is refused by a default context: the cert really is the one served.
    with pytest.raises(ssl.SSLError):
        request(fx.port, context=ssl.create_default_context())
    # And the server still serves TLS afterwards.
    r = get_ok(fx.port, "/health", context=ctx)
    assert json.loads(r.body)["status"] == "ok"


def test_tls_with_token(start, cert):
    crt, key = cert
    fx = start(tls_options(crt, key) + "&token=s3cret")
    ctx = ssl.create_default_context(cafile=str(crt))
    assert request(fx.port, context=ctx).status == 401
    get_ok(fx.port, context=ctx, headers={"Authorization": "Bearer s3cret"})


def test_tls_missing_key_file(spawn, cert, tmp_path):
    crt, _ = cert
    fx = spawn("--options", tls_options(crt, tmp_path / "absent-key.pem"))
    err = failed_start(fx)
    assert "tls_key" in err and "absent-key.pem" in err and "CM_EINVAL" in err


def test_tls_key_without_cert(spawn, cert):
    _, key = cert
    err = failed_start(spawn("--options", f"tls_key={key}"))
    assert "tls_cert" in err and "CM_EINVAL" in err


def test_tls_garbage_key(spawn, cert, tmp_path):
    crt, _ = cert
    bad = tmp_path / "bad-key.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    err = failed_start(spawn("--options", tls_options(crt, bad)))
    assert "CM_EINVAL" in err, err


# ---- listen addresses and options ---------------------------------------------

def test_port_in_use(start, spawn):
    first = start()
    second = spawn("--listen", f"127.0.0.1:{first.port}")
    err = failed_start(second)
    assert "CM_EUNAVAILABLE" in err and f"127.0.0.1:{first.port}" in err, err
    assert "in use" in err.lower(), err
    get_ok(first.port, "/health")  # the first one is untouched


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) here")
def test_listen_ipv6_loopback(start):
    fx = start(listen="[::1]:0")
    fx.cmd("add get 2")
    r = get_ok(fx.port, host="::1")
    assert samples(r.text)[("fixture_requests_total", (("method", "get"),))] == 2
    assert listeners(fx.port) == {"::1"}


def listeners(port):
    """The local addresses listening on TCP `port`, from /proc/net/tcp{,6}."""
    found = set()
    for name, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, hexport = fields[1].split(":")
            if fields[3] != "0A" or int(hexport, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr)
            if v6:  # four host-order 32-bit words
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
            else:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
    return found


def test_listen_port_only_binds_loopback(start):
    fx = start(listen=":0")
    get_ok(fx.port, "/health")
    assert listeners(fx.port) == {"127.0.0.1"}


def test_default_listen_binds_loopback(server):
    assert listeners(server.port) == {"127.0.0.1"}


@pytest.mark.parametrize("listen,fragment", [
    ("127.0.0.1", "expected host:port"),
    ("127.0.0.1:99999", "port must be 0..65535"),
    ("127.0.0.1:http", "port must be"),
    ("::1:0", "[addr]:port"),
    ("[::1", "[v6-address]:port"),
    ("no.such.host.invalid:0", "cannot resolve"),
])
def test_bad_listen(spawn, listen, fragment):
    err = failed_start(spawn("--listen", listen))
    assert fragment in err and "CM_EINVAL" in err, err


@pytest.mark.parametrize("options,fragment", [
    ("colour=blue", "colour"),
    ("max_conns=0", "max_conns"),
    ("timeout_s=abc", "timeout_s"),
    ("threads=65", "threads"),
    ("token=", "token"),
    ("basic_auth=nocolon", "basic_auth"),
])
def test_bad_options(spawn, options, fragment):
    err = failed_start(spawn("--options", options))
    assert fragment in err and "CM_EINVAL" in err, err


def test_thread_pool(start):
    fx = start("threads=4")
    fx.cmd("add get 1")
    for _ in range(8):
        r = get_ok(fx.port)
        assert samples(r.text)[("fixture_requests_total", (("method", "get"),))] == 1


# ---- self-metrics -------------------------------------------------------------

def test_self_metrics(server):
    n = 7
    for _ in range(n):
        get_ok(server.port, "/health")
    for path in ("/nope", "/other/thing", "/metrics/x"):
        assert request(server.port, path).status == 404
    health = ("cachemeter_http_requests_total", (("code", "200"), ("path", "/health")))
    deadline = time.monotonic() + BOUND
    while True:  # a request may be recorded just after its response is sent: poll
        got = samples(get_ok(server.port).text)
        if got.get(health) == n or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert got[health] == n
    assert got[("cachemeter_http_requests_total", (("code", "404"), ("path", "other")))] == 3
    assert not [k for k in got if dict(k[1]).get("path", "").startswith(("/nope", "/other", "/metrics/"))]
    count = got[("cachemeter_http_request_duration_seconds_count", (("path", "/health"),))]
    assert count == n
    assert got[("cachemeter_http_request_duration_seconds_bucket", (("le", "+Inf"), ("path", "/health")))] == count
    assert got[("cachemeter_http_request_duration_seconds_sum", (("path", "/health"),))] > 0
    assert got[("cachemeter_http_request_duration_seconds_count", (("path", "other"),))] == 3
    # A second scrape counts the first.
    got2 = samples(get_ok(server.port).text)
    assert got2[("cachemeter_http_requests_total", (("code", "200"), ("path", "/metrics")))] >= 1


# ---- abuse --------------------------------------------------------------------

def assert_serving(port, bound=5.0):
    t0 = time.monotonic()
    r = get_ok(port)
    took = time.monotonic() - t0
    assert took < bound, f"/metrics took {took:.2f} s"
    assert r.header("Content-Type") == TEXT_TYPE
    samples(r.text)


MALFORMED = {
    "garbage": (b"garbage\r\n\r\n", "4xx"),
    "method_only": (b"GET\r\n\r\n", "4xx"),
    "no_version": (b"GET /metrics\r\n\r\n", "4xx"),
    "ssh_banner": (b"SSH-2.0-OpenSSH_9.2p1\r\n", "4xx"),
    "tls_hello": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(256)), "4xx"),
    "http_9_9": (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", "any"),
    "unknown_method": (b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "405"),
    "absurd_method": (b"A" * 5000 + b" /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "4xx"),
    "huge_url": (b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "4xx"),
    "negative_length": (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", "4xx"),
    "bad_chunk": (b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "4xx"),
    "header_without_colon": (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", "any"),
    "nul_bytes": (b"\x00" * 1000 + b"\r\n\r\n", "4xx"),
    "bad_escapes": (b"GET /metrics?name[]=%ZZ&name[]=%00 HTTP/1.1\r\nHost: x\r\n\r\n", "any"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_requests(start, case):
    payload, expect = MALFORMED[case]
    fx = start("timeout_s=2")  # what the server waits out must end within the bound
    raw = raw_exchange(fx.port, payload)
    code = status_of(raw)
    if expect == "405":
        assert code == 405
    elif expect == "4xx":
        assert code is None or 400 <= code < 500, raw[:200]
    else:
        assert code is None or code < 600, raw[:200]
    assert_serving(fx.port)


def test_malformed_requests_do_not_block_others(server):
    socks = []
    try:
        for payload, _ in MALFORMED.values():  # all pending at once
            s = socket.create_connection(("127.0.0.1", server.port), timeout=BOUND)
            socks.append(s)
            try:
                s.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass
        assert_serving(server.port)
    finally:
        close_all(socks)
    assert_serving(server.port)


def test_huge_header(server):
    payload = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (200 * 1024) + b"\r\n\r\n"
    code = status_of(raw_exchange(server.port, payload))
    assert code is None or 400 <= code < 500
    many = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\n"
    code = status_of(raw_exchange(server.port, many))
    assert code is None or 400 <= code < 500
    assert_serving(server.port)


def test_pipelined_and_keepalive(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=BOUND)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = bytearray()
        assert read_head(s, buf).startswith(b"HTTP/1.1 200")
        assert read_head(s, buf).startswith(b"HTTP/1.1 404")
        assert buf == b""
    finally:
        s.close()
    assert_serving(server.port)


def test_500_held_connections(start):
    # Every client here is 127.0.0.1: no per-IP cap, and no request deadline
    # to race with (both are tested on their own below).
    fx = start("max_conns=1000&max_conns_per_ip=0&request_timeout_ms=600000")
    fx.cmd("add get 9")
    idle = []
    try:
        for i in range(500):
            s = socket.create_connection(("127.0.0.1", fx.port), timeout=BOUND)
            idle.append(s)
            if i % 2:
                s.sendall(b"GET /metrics HTTP/1.1\r\n")  # an unfinished request
        t0 = time.monotonic()
        r = get_ok(fx.port)
        took = time.monotonic() - t0
        assert took < 5, f"/metrics took {took:.2f} s with 500 connections held"
        assert samples(r.text)[("fixture_requests_total", (("method", "get"),))] == 9
        # Requests on some of the held connections are answered too.
        for s in idle[1:40:2]:
            s.sendall(b"Host: x\r\n\r\n")
        for s in idle[1:40:2]:
            assert read_head(s).startswith(b"HTTP/1.1 200")
    finally:
        close_all(idle)
    assert_serving(fx.port)


def test_beyond_max_conns(start):
    limit = 5
    fx = start(f"max_conns={limit}")
    held = open_held(fx.port, limit, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    extra = socket.create_connection(("127.0.0.1", fx.port), timeout=BOUND)
    try:
        try:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        # At the limit the extra connection is refused (closed) or waits: never served.
        extra.settimeout(1.5)
        try:
            first = extra.recv(65536)
            refused = True
            assert first == b"", f"served beyond max_conns: {first[:100]!r}"
        except ConnectionResetError:
            refused = True
        except socket.timeout:
            refused = False  # waiting in the backlog
        close_all(held)
        held = []
        if not refused:  # a waiting connection is served once others close
            extra.settimeout(BOUND)
            assert read_head(extra).startswith(b"HTTP/1.1 200")
    finally:
        close_all(held)
        extra.close()
    # Service is back for everyone, up to the limit again.
    again = open_held(fx.port, limit, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    close_all(again)
    deadline = time.monotonic() + BOUND
    while True:  # the server notices the closes asynchronously
        try:
            assert_serving(fx.port)
            break
        except (ConnectionError, http.client.HTTPException, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_slow_client(server):
    stop = threading.Event()
    sent = []
    errors = []
    s = socket.create_connection(("127.0.0.1", server.port), timeout=BOUND)

    def dribble():
        try:
            for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n":
                if stop.wait(1.0):
                    return
                s.sendall(bytes([b]))
                sent.append(b)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=dribble)
    t.start()
    try:
        t_end = time.monotonic() + 3.0
        n = 0
        while time.monotonic() < t_end:
            assert_serving(server.port, bound=1.0)
            n += 1
            time.sleep(0.1)
        assert n >= 10
    finally:
        stop.set()
        t.join(BOUND)
        s.close()
    assert not t.is_alive()
    assert len(sent) >= 2 and not errors, (sent, errors)


def test_idle_timeout(start):
    fx = start("timeout_s=1")
    idle = socket.create_connection(("127.0.0.1", fx.port), timeout=BOUND)
    kept = socket.create_connection(("127.0.0.1", fx.port), timeout=BOUND)
    try:
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(kept).startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        assert closed_within(idle, 8.0), "an idle connection outlived timeout_s=1 by far"
        assert closed_within(kept, 8.0), "an idle keep-alive connection outlived timeout_s=1 by far"
        assert time.monotonic() - t0 < 8.0
    finally:
        idle.close()
        kept.close()
    assert_serving(fx.port)


# ---- stopping -----------------------------------------------------------------

def test_stop_is_prompt_with_open_connections(start):
    # Idle connections would outlive any wait for them (all from 127.0.0.1).
    fx = start("timeout_s=60&request_timeout_ms=600000&max_conns_per_ip=100")
    socks = open_held(fx.port, 25, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    socks += open_held(fx.port, 25)
    try:
        get_ok(fx.port, "/health")
        rc, took = fx.quit()
        assert rc == 0, fx.stderr()
        assert took < BOUND, f"stopping took {took:.2f} s"
        for s in socks:  # every connection was closed by the server
            assert closed_within(s, 2.0)
    finally:
        close_all(socks)


def test_end_of_input_stops(start):
    fx = start()
    fx.proc.stdin.close()
    assert fx.wait_exit() == 0
    with pytest.raises(ConnectionError):
        request(fx.port)


# ---- /health off the polling thread (issue 13, item 3) -------------------------

def answers_ping(sock):
    """True when a redis-server listens on the unix socket and answers PING."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(2)
            c.connect(sock)
            c.sendall(b"PING\r\n")
            return c.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_sock(tmp_path):
    """A private redis-server on a unix socket; stopped (and resumed first,
    should a test leave it SIGSTOPped) at teardown."""
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(server):
        pytest.fail("redis-server is not installed (scripts/setup.sh installs it)")
    sock = str(tmp_path / "redis.sock")
    proc = subprocess.Popen([server, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        # The socket file appears at bind(), before listen(): wait for an
        # answered PING, not for the file, or a first connect can be refused.
        deadline = time.monotonic() + BOUND
        while not answers_ping(sock) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None and answers_ping(sock), "redis-server did not start"
        yield proc, sock
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
        try:
            proc.wait(timeout=BOUND)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def health(port, **kw):
    r = request(port, "/health", **kw)
    return r.status, json.loads(r.body)


def poll_health(port, want):
    """Polls /health until want(status, doc) holds (generous bound)."""
    deadline = time.monotonic() + BOUND
    while True:
        status, doc = health(port)
        if want(status, doc):
            return status, doc
        assert time.monotonic() < deadline, f"/health never got there: {status} {doc}"
        time.sleep(0.02)


def test_health_check_blocked_by_a_stopped_redis_blocks_nothing_else(start, redis_sock):
    """A SIGSTOPped redis-server accepts connections and never answers: the
    health check's PING hangs for the whole timeout_ms (30 s here, far past
    every bound below). Scrapes and cm_cache_open go on meanwhile, and the
    check provably has not finished while they do: redis is still stopped
    and /health still says it is refreshing afterwards."""
    proc, sock = redis_sock
    fx = start()
    fx.cmd(f"open remote redis+unix://{sock}?timeout_ms=30000&breaker_failures=0")
    os.kill(proc.pid, signal.SIGSTOP)
    # The first /health starts the check, waits for it a bounded time, then
    # says "pending" (nothing is known yet) instead of hanging.
    status, doc = health(fx.port)
    assert status == 503 and doc["status"] == "pending" and doc["refreshing"] is True, doc
    assert doc["caches"] == []
    # While the check is blocked: scrapes are served, caches open and close.
    fx.cmd("add get 3")
    r = get_ok(fx.port)
    assert samples(r.text)[("fixture_requests_total", (("method", "get"),))] == 3
    get_ok(fx.port, "/metrics.json")
    fx.cmd("open other memory://")
    fx.cmd("cache_set k v")
    # ... and the check is still the one in flight (redis never answered).
    status, doc = health(fx.port)
    assert status == 503 and doc["status"] == "pending" and doc["refreshing"] is True, doc
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGCONT)
    status, doc = poll_health(fx.port, lambda st, d: st == 200 and len(d["caches"]) == 3)
    assert doc["status"] == "ok" and doc["refreshing"] is False and doc["age_ms"] >= 0
    assert {(c["cache"], c["backend"], c["healthy"]) for c in doc["caches"]} == {
        ("fixture", "memory", True), ("other", "memory", True), ("remote", "redis", True)}


def test_closing_a_cache_whose_check_is_running(start, redis_sock):
    """cm_cache_close of a cache whose health check is blocked waits for that
    check (it uses the backend being freed) and returns once it ends; the
    server meanwhile answers from the last results, with their age. The ASan
    run of this suite catches a check that outlives its cache."""
    proc, sock = redis_sock
    fx = start("health_interval_ms=0")  # every /health refreshes
    fx.cmd(f"open remote redis+unix://{sock}?timeout_ms=30000&breaker_failures=0")
    status, doc = poll_health(fx.port, lambda st, d: st == 200 and len(d["caches"]) == 2)
    os.kill(proc.pid, signal.SIGSTOP)
    status, doc = health(fx.port)  # a refresh starts and blocks; the last results answer
    assert status == 200 and doc["refreshing"] is True and len(doc["caches"]) == 2, doc
    assert isinstance(doc["age_ms"], int) and doc["age_ms"] >= 0
    fx.proc.stdin.write("close remote\n")
    fx.proc.stdin.flush()
    with pytest.raises(queue.Empty):  # the close waits for the check: redis is stopped
        fx._lines.get(timeout=0.5)
    get_ok(fx.port)  # not the server, though
    os.kill(proc.pid, signal.SIGCONT)
    assert fx.line() == "OK"
    status, doc = poll_health(fx.port, lambda st, d: st == 200 and not d["refreshing"] and len(d["caches"]) == 1)
    assert doc["caches"] == [{"cache": "fixture", "backend": "memory", "healthy": True}]


def test_health_unhealthy_backend_and_age(start, redis_sock):
    proc, sock = redis_sock
    fx = start("health_interval_ms=60000")
    fx.cmd(f"open remote redis+unix://{sock}?timeout_ms=2000&breaker_failures=0")
    status, doc = poll_health(fx.port, lambda st, d: st == 200 and len(d["caches"]) == 2)
    # Within health_interval_ms the same results answer (no backend I/O), older each time.
    proc.terminate()
    proc.wait(timeout=BOUND)
    status2, doc2 = health(fx.port)
    assert status2 == 200 and doc2["age_ms"] >= doc["age_ms"] and doc2["refreshing"] is False
    # A change in the set of caches refreshes them at once: redis is gone now.
    fx.cmd("open other memory://")
    status, doc = poll_health(fx.port, lambda st, d: len(d["caches"]) == 3 and not d["refreshing"])
    assert status == 503 and doc["status"] == "unhealthy"
    bad = [c for c in doc["caches"] if not c["healthy"]]
    assert len(bad) == 1 and bad[0]["cache"] == "remote" and bad[0]["status"].startswith("CM_E") and bad[0]["error"]


# ---- slow clients (issue 13, item 4) --------------------------------------------

def connect_from(port, src, timeout=BOUND):
    """A connection to 127.0.0.1:port from source address src (any 127/8
    address is local on Linux: distinct client IPs without a network)."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))


def test_request_deadline_closes_a_trickling_client(start):
    """A client that keeps sending header lines but never ends its request
    head is closed after request_timeout_ms, although it is never idle for
    timeout_s; an answered keep-alive connection must send its next request
    within the deadline too."""
    fx = start("request_timeout_ms=1000&timeout_s=60")
    s = socket.create_connection(("127.0.0.1", fx.port), timeout=BOUND)
    kept = socket.create_connection(("127.0.0.1", fx.port), timeout=BOUND)
    try:
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(kept).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + BOUND
        lines = 0
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                s.sendall(b"X-Trickle-%d: y\r\n" % lines)
                lines += 1
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed = closed_within(s, 0.2)  # one header line every 200 ms: never idle
        assert closed, f"a client trickling headers for {BOUND} s was never closed"
        assert lines >= 2  # it was trickling, not idle
        assert closed_within(kept, BOUND), "an idle keep-alive connection outlived request_timeout_ms"
    finally:
        s.close()
        kept.close()
    assert_serving(fx.port)


def test_slowloris_from_several_addresses_leaves_scrapes_working(start):
    """Four attacking addresses each keep 12 connections trickling a header
    line every 0.3 s and reconnect whenever closed: 48 connections against
    max_conns=40, which used to fail every scrape. The per-IP cap (8) keeps
    them to 32 and the request deadline recycles them; a scraper from a fifth
    address succeeds every time, and the attackers see their connections
    closed: past the cap at once, the others at the deadline."""
    fx = start("max_conns=40&max_conns_per_ip=8&request_timeout_ms=1500&timeout_s=60")
    stop = threading.Event()
    # A close seen within 1.5 s of connecting cannot be the deadline's: past the cap.
    refused = {}  # source -> connections closed within 1.5 s (past the cap)
    expired = {}  # source -> connections closed later (the 1.5 s deadline)
    errors = []

    def attacker(src):
        socks = []  # (socket, connected at)
        refused[src] = expired[src] = 0
        try:
            while not stop.is_set():
                while len(socks) < 12 and not stop.is_set():
                    t0 = time.monotonic()
                    try:
                        c = connect_from(fx.port, src, timeout=2)
                    except OSError:
                        refused[src] += 1
                        break
                    socks.append((c, t0))
                    try:
                        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    except OSError:
                        pass  # seen below
                if stop.wait(0.3):
                    break
                for entry in list(socks):
                    c, t0 = entry
                    try:
                        c.sendall(b"X-Slow: 1\r\n")
                        c.setblocking(False)
                        try:
                            gone = c.recv(4096) == b""
                        except BlockingIOError:
                            gone = False
                        c.setblocking(True)
                    except OSError:
                        gone = True
                    if gone:
                        if time.monotonic() - t0 < 1.5:
                            refused[src] += 1
                        else:
                            expired[src] += 1
                        socks.remove(entry)
                        c.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        finally:
            close_all([c for c, _ in socks])

    attackers = [threading.Thread(target=attacker, args=(f"127.0.0.{i}",)) for i in range(2, 6)]
    for t in attackers:
        t.start()
    try:
        time.sleep(0.5)  # let the attack fill what it can (pressure only: nothing asserted on it)
        fx.cmd("add get 5")
        t_end = time.monotonic() + 4.0  # past two request deadlines
        scrapes = 0
        while time.monotonic() < t_end:
            conn = http.client.HTTPConnection("127.0.0.1", fx.port, timeout=BOUND, source_address=("127.0.0.9", 0))
            try:
                conn.request("GET", "/metrics")
                resp = conn.getresponse()
                assert resp.status == 200
                assert samples(resp.read().decode())[("fixture_requests_total", (("method", "get"),))] == 5
            finally:
                conn.close()
            scrapes += 1
            time.sleep(0.1)
        assert scrapes >= 5
    finally:
        stop.set()
        for t in attackers:
            t.join(BOUND)
    assert not errors, errors
    assert all(n > 0 for n in refused.values()), refused  # 12 tried, 8 allowed
    assert all(n > 0 for n in expired.values()), expired  # 4 s of attack, a 1.5 s deadline
    assert_serving(fx.port)
