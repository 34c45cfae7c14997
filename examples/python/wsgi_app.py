# SPDX-License-Identifier: Apache-2.0
"""examples/python/wsgi_app.py: a plain WSGI app (no framework) with a
@cached lookup and its metrics on /metrics of the same port.

    gunicorn --bind 127.0.0.1:8000 --chdir examples/python wsgi_app:app
    python3 examples/python/wsgi_app.py 8000        # wsgiref, for a quick look

Flask and Django mount `cachemeter.make_wsgi_app(registry)` the same way
(werkzeug's DispatcherMiddleware; a Django view that calls it).
"""
import json
import sys
import time

import cachemeter

registry = cachemeter.Registry()
metrics_app = cachemeter.make_wsgi_app(registry)
requests = registry.counter("wsgi_requests", "Requests by path.", labels=("path",))


@cachemeter.cached(registry=registry, ttl=60)
def price(item: str) -> dict:
    time.sleep(0.005)  # the slow part: a database, a remote service
    return {"item": item, "price": round(len(item) * 1.25, 2)}


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/metrics":
        return metrics_app(environ, start_response)
    if path.startswith("/price/"):
        requests.labels("/price").inc()
        body = json.dumps(price(path[len("/price/"):])).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    requests.labels("other").inc()
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"not found\n"]


if __name__ == "__main__":
    from wsgiref.simple_server import make_server
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    with make_server("127.0.0.1", port, app) as srv:
        print(f"serving http://127.0.0.1:{port}/price/apple and /metrics")
        srv.serve_forever()
