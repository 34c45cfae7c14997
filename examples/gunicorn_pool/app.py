# SPDX-License-Identifier: Apache-2.0
"""A WSGI app whose metrics are shared by all its gunicorn workers
(docs/multiprocess.md). Run it with the config beside it:

    CM_SHARED_DIR=/run/app/metrics gunicorn -c gunicorn.conf.py app:app

then GET /<n> (squares n mod 20 through a cached function) and GET /metrics
(the whole pool's metrics, from whichever worker answers). The registry is
made at import: with preload_app the master makes it before forking, and
each worker gets its own slot at its first update.
"""
import os

import cachemeter

REG = cachemeter.Registry(shared=os.environ.get("CM_SHARED_DIR", "/tmp/cachemeter-example-metrics"),
                          max_workers=16)
REQUESTS = REG.counter("app_requests", "Requests the app served.")


@cachemeter.cached(registry=REG, name="square")
def square(x):
    return x * x


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/metrics":
        body = REG.render().encode()
        ctype = "text/plain; version=0.0.4; charset=utf-8"
    else:
        REQUESTS.inc()
        body = str(square(int(path.strip("/") or "0") % 20)).encode()
        ctype = "text/plain"
    start_response("200 OK", [("Content-Type", ctype), ("X-Worker", str(os.getpid()))])
    return [body]
