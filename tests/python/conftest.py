# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures of the Python binding's tests (tests/python).

CTest runs each file with Debian's /usr/bin/python3 and PYTHONPATH set to the
build tree's package (bindings/python in the build directory). The
environment says what the library was built with, so a feature that is
built is tested rather than skipped:
  CM_TEST_WITH_HTTP, CM_TEST_WITH_SQLITE, CM_TEST_WITH_REDIS   "1" or "0"
  CM_LIBCACHEMETER    the libcachemeter.so the ctypes test loads
Run by hand:
  PYTHONPATH=build/bindings/python CM_LIBCACHEMETER=build/src/libcachemeter.so.0 \
    /usr/bin/python3 -m pytest -q tests/python
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Callable, Iterator

import pytest

BOUND = 10.0  # seconds: the generous bound on anything that should take milliseconds


def built_with(feature: str) -> bool:
    return os.environ.get(f"CM_TEST_WITH_{feature}", "1") == "1"


needs_http = pytest.mark.skipif(not built_with("HTTP"), reason="built without CM_WITH_HTTP")
needs_sqlite = pytest.mark.skipif(not built_with("SQLITE"), reason="built without CM_WITH_SQLITE")
needs_redis = pytest.mark.skipif(not built_with("REDIS"), reason="built without CM_WITH_REDIS")


def poll(cond: Callable[[], object], timeout: float = BOUND, what: str = "the condition") -> object:
    """Calls cond every 5 ms until it returns something true; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(0.005)


@pytest.fixture
def registry() -> Iterator["object"]:
    import cachemeter
    with cachemeter.Registry() as reg:
        yield reg


def _answers_ping(sock: str) -> bool:
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
def redis_socket(tmp_path) -> Iterator[str]:
    """A private redis-server on a unix socket (no TCP port, nothing on disk)."""
    if not built_with("REDIS"):
        pytest.skip("built without CM_WITH_REDIS")
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(server):
        pytest.fail("redis-server is not installed (scripts/setup.sh installs it)")
    sock = str(tmp_path / "redis.sock")
    proc = subprocess.Popen([server, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        # The socket file appears at bind(), before listen(): wait for an
        # answered PING, not for the file, or a first connect can be refused.
        poll(lambda: _answers_ping(sock) or proc.poll() is not None, what="redis-server's PONG")
        assert proc.poll() is None, "redis-server exited at start"
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=BOUND)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
