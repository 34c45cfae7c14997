#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/fuzz/make_text_seeds.py: writes the seed corpora of the harnesses
whose inputs are text or marshal bytes (options, render, pycodec, http).
Deterministic; rerun after editing and commit the result. The metrics-file
seeds come from make_seeds.sh, persist_rows' are hand-written."""
import marshal
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))


def write(harness, items):
    d = os.path.join(HERE, harness, "corpus")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in items.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())


# options: registry options \n memory:// rest \n cache name \n [L1 rest]
write("options", {
    "defaults": "\n?\nc\n",
    "registry": "prefix=app_&const_labels=env:prod,svc:a%2Cb%3Ac&max_series=5&persist_gauges=yes\n?max_entries=10\nweb\n",
    "sizes": "\n?max_bytes=64MiB&max_entry_bytes=1KB&ttl_ms=30000&sample=1&metrics=off\nc\n",
    "front": "\n?load_timeout_ms=5&stale_ms=100&max_entries=0&max_bytes=0\nc\n",
    "tiered": "\n?ttl_ms=5\nt\n?max_entries=3&ttl_ms=1\n",
    "percent": "const_labels=a:%C3%BC%25\n?max_bytes=1%47iB\nn%00me\n",
    "location": "\nsome/where?x=1\nc\n",
    "bad": "max_series=99999999999999999999&&prefix=__x\n?ttl_ms=-1&ttl_ms=2\n\n",
    "uri": "\nREDIS+unix://h:1/0?timeout_ms=1&pool=2\nc\n",
})

# render: kind+registry options \0 name \0 help \0 label names \0 bounds \0 values...
def nul(*fields):
    return b"\0".join(f.encode() if isinstance(f, str) else f for f in fields)


write("render", {
    "counter": nul("c", "requests_total", "Requests.", "path,code", "", "/a", "200", "/b\"\\\n", "500"),
    "gauge": nul("gconst_labels=env:x", "temp", "Help with \\ and\nnewline", "room", "", "k\u00fcche", "-0", "NaN", "1e-320"),
    "histogram": nul("h", "latency_seconds", "", "op", "-1,0,0.5,1e300", "get", "0.5", "set", "inf"),
    "histogram_default": nul("hprefix=x_", "h", "h", "", "", ""),
    "counter_nolabels": nul("c", "x", "", "", "", ""),
    "bad_names": nul("c", "__reserved", "", "le,a", "", "1", "2"),
    "colon": nul("g", "a:b:c", "\"quoted\" help", "l1,l2,l3", "", "\t", "\x7f", "\u2028"),
})

# pycodec: what marshal.dumps(obj, 2) writes for the core types
samples = {
    "none": None, "bools": (True, False), "int": 7, "negint": -2**31, "long": 2**62,
    "neglong": -2**63, "float": 1.5, "nan": float("nan"), "str": "h\u00e9llo \u2603",
    "bytes": b"\0\xff", "list": [1, [2, [3, []]]], "dict": {"a": 1, 2: (3.0, "x"), None: b""},
    "nested": ((((((("deep",),),),),),),), "empty": ((), [], {}, "", b""),
}
write("pycodec", {k: marshal.dumps(v, 2) for k, v in samples.items()})

# http: raw requests
CRLF = "\r\n"
def req(line, *headers, body=""):
    return CRLF.join((line,) + headers) + CRLF + CRLF + body

write("http", {
    "metrics": req("GET /metrics HTTP/1.1", "Host: x"),
    "openmetrics_gzip": req("GET /metrics HTTP/1.1", "Host: x",
                            "Accept: application/openmetrics-text;version=1.0.0;q=0.9, text/plain;q=0.1",
                            "Accept-Encoding: gzip;q=1, *;q=0"),
    "json": req("GET /metrics.json HTTP/1.0"),
    "health": req("GET /health HTTP/1.1", "Host: x", "Authorization: Bearer secret"),
    "basic": req("GET / HTTP/1.1", "Host: x", "Authorization: Basic dXNlcjpwYXNz"),
    "filter": req("GET /metrics?name[]=requests_total&name[]=latency_seconds_bucket&x=%zz HTTP/1.1", "Host: x"),
    "head": req("HEAD /metrics HTTP/1.1", "Host: x", "Connection: keep-alive"),
    "post": req("POST /metrics HTTP/1.1", "Host: x", "Content-Length: 5", body="hello"),
    "chunked": req("PUT /x HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", body="5\r\nhello\r\n0\r\n\r\n"),
    "pipelined": req("GET /health HTTP/1.1", "Host: x") + req("GET /nope HTTP/1.1", "Host: x"),
    "folded": "GET /metrics HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
    "bare_lf": "GET /metrics HTTP/1.1\nHost: x\n\n",
    "http09": "GET /\r\n",
})
print("seeds written")
