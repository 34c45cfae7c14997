# SPDX-License-Identifier: Apache-2.0
"""Status -> exception: every status of the C API maps to a class, each
class carries its status and cm_errmsg(), and each status the C API can
produce is provoked for real from Python (CM_ENOMEM cannot be, and is
checked through the mapping alone). The classes are generated from
CM_STATUS_MAP (cmake/cm_status_bindings.cmake); EXPECTED pins the names the
bindings have always had, and the generator's own tests prove that a status
added to common.h reaches Python and Java or fails the build."""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import socket
import subprocess
import threading

import pytest

import cachemeter
from cachemeter import _core, _errors
from conftest import BOUND, needs_http, needs_redis, needs_sqlite

EXPECTED = {
    "CM_EINVAL": cachemeter.InvalidArgument,
    "CM_ENOMEM": cachemeter.OutOfMemory,
    "CM_EEXIST": cachemeter.AlreadyExists,
    "CM_ELIMIT": cachemeter.LimitExceeded,
    "CM_EBACKEND": cachemeter.BackendError,
    "CM_ETIMEOUT": cachemeter.Timeout,
    "CM_EUNAVAILABLE": cachemeter.Unavailable,
    "CM_ECORRUPT": cachemeter.Corrupt,
    "CM_ESTATE": cachemeter.StateError,
}


def test_every_c_status_has_its_class():
    """Walks the C library's status list (cm_status_name), so a status added
    to common.h without a Python class fails here."""
    negative = {s: _core.cm_status_name(s) for s in range(-64, 0) if _core.cm_status_name(s) != "CM_UNKNOWN"}
    assert set(negative.values()) == set(EXPECTED), "common.h and cachemeter._errors disagree"
    for status, name in negative.items():
        cls = EXPECTED[name]
        assert cls.status == status == getattr(_core, name)
        e = _errors._from_status(status, "detail")
        assert type(e) is cls and isinstance(e, cachemeter.Error)
        assert (e.status, e.name, str(e)) == (status, name, "detail")
    assert issubclass(cachemeter.OutOfMemory, MemoryError)
    assert issubclass(cachemeter.InvalidArgument, ValueError)
    assert type(_errors._from_status(-1000, "x")) is cachemeter.Error  # unknown: the base class


def test_the_generated_module_follows_the_c_list():
    """_errors.py is generated from CM_STATUS_MAP: its classes are the C
    library's negative statuses in the C order, each exported by the package."""
    negative = [s for s in range(-1, -64, -1) if _core.cm_status_name(s) != "CM_UNKNOWN"]
    classes = [_errors._BY_STATUS[s] for s in negative]
    assert _errors.__all__ == ["Error"] + [cls.__name__ for cls in classes]
    assert len(set(classes)) == len(classes)
    for cls in classes:
        assert getattr(cachemeter, cls.__name__) is cls and cls.__name__ in cachemeter.__all__
        assert cls.__module__ == "cachemeter._errors" and cls.__doc__.startswith(_core.cm_status_name(cls.status))
    for status in (_core.CM_OK, _core.CM_MISS):
        assert status not in _errors._BY_STATUS


SOURCE = pathlib.Path(__file__).resolve().parents[2]


def _c_compiler():
    build = os.environ.get("CM_BUILD_DIR")
    if build and os.path.exists(os.path.join(build, "CMakeCache.txt")):
        with open(os.path.join(build, "CMakeCache.txt"), encoding="utf-8") as cache:
            m = re.search(r"^CMAKE_C_COMPILER:\w+=(.+)$", cache.read(), re.M)
            if m:
                return m.group(1)
    return shutil.which("cc") or pytest.skip("no C compiler")


def _generate(tmp_path, extra_status, extra_row):
    """Runs the bindings' generator (cmake/cm_status_bindings.cmake) over a
    copy of common.h whose CM_STATUS_MAP has one status more, and over a copy
    of the class table with `extra_row` appended."""
    include = tmp_path / "include" / "cachemeter"
    include.mkdir(parents=True)
    header = (SOURCE / "include" / "cachemeter" / "common.h").read_text()
    if extra_status:
        header, n = re.subn(r"(#define CM_STATUS_MAP\(XX\)[ \t]*\\\n)", lambda m: f"{m.group(1)}  {extra_status} \\\n",
                            header)
        assert n == 1
    (include / "common.h").write_text(header)
    table = tmp_path / "status_classes.cmake"
    table.write_text((SOURCE / "bindings" / "status_classes.cmake").read_text() + extra_row)
    out = tmp_path / "out"
    files = []
    for template in ("bindings/python/cachemeter/_errors.py.in", "bindings/java/src/org/cachemeter/Status.java.in",
                     "bindings/java/src/org/cachemeter/CachemeterException.java.in"):
        files += [str(SOURCE / template), str(out / os.path.basename(template)[:-3])]
    r = subprocess.run(["cmake", f"-DCC={_c_compiler()}", f"-DINCLUDE_DIR={tmp_path / 'include'}",
                        f"-DTABLE={table}", "-DFILES=" + "|".join(files),
                        "-P", str(SOURCE / "cmake" / "cm_status_bindings.cmake")],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    return r, out, " ".join(r.stderr.split())  # CMake wraps its messages


def test_a_status_added_to_common_h_fails_the_build_without_its_class(tmp_path):
    r, _, err = _generate(tmp_path, 'XX(CM_EFUTURE, -100, "a status from the future")', "")
    assert r.returncode != 0
    assert "CM_EFUTURE (CM_STATUS_MAP, include/cachemeter/common.h) has no exception class" in err, err


def test_a_status_added_with_its_row_reaches_python_and_java(tmp_path):
    r, out, _ = _generate(tmp_path, 'XX(CM_EFUTURE, -100, "a status from the future")',
                       'cm_status_class(CM_EFUTURE Future "" "a status from the future")\n')
    assert r.returncode == 0, r.stderr
    py = (out / "_errors.py").read_text()
    assert 'class Future(Error):\n    """CM_EFUTURE: a status from the future."""\n    status = _core.CM_EFUTURE' in py
    assert '"Future",' in py and "        Future,\n" in py
    assert "public static final int EFUTURE = cm_status.CM_EFUTURE;" in (out / "Status.java").read_text()
    java = (out / "CachemeterException.java").read_text()
    assert "case Status.EFUTURE: return new Future(message);" in java
    assert "public static final class Future extends CachemeterException {" in java


def test_a_row_for_a_status_common_h_lacks_fails_the_build(tmp_path):
    r, _, err = _generate(tmp_path, "", 'cm_status_class(CM_EGONE Gone "" "a status that is gone")\n')
    assert r.returncode != 0 and "CM_EGONE is not in CM_STATUS_MAP" in err, err


def test_raising_from_python_keeps_the_class_status():
    e = cachemeter.Timeout("slow")
    assert e.status == _core.CM_ETIMEOUT and e.name == "CM_ETIMEOUT"
    assert "Timeout('slow', status=-6 CM_ETIMEOUT)" == repr(e)


def test_message_is_the_calling_threads_errmsg(registry):
    with pytest.raises(cachemeter.InvalidArgument) as e:
        registry.counter("bad name")
    assert str(e.value) == 'cm_counter_new: name "bad name" is not a valid metric name'
    assert _core.cm_errmsg() == str(e.value)
    # another thread's failure does not leak into this thread's message
    other = []

    def fail_elsewhere():
        try:
            registry.counter("other bad name")
        except cachemeter.InvalidArgument as err:
            other.append(str(err))

    t = threading.Thread(target=fail_elsewhere)
    t.start()
    t.join(BOUND)
    assert other == ['cm_counter_new: name "other bad name" is not a valid metric name']
    assert _core.cm_errmsg() == str(e.value)


def test_einval(registry):
    with pytest.raises(cachemeter.InvalidArgument, match="colour"):
        cachemeter.Cache("memory://?colour=red", "c", registry)
    with pytest.raises(cachemeter.InvalidArgument):
        registry.histogram("h", buckets=(1, float("inf")))


def test_eexist(registry):
    registry.gauge("taken")
    with pytest.raises(cachemeter.AlreadyExists):
        registry.counter("taken")


def test_elimit(registry):
    with cachemeter.Registry(max_series=1) as reg:
        f = reg.counter("one", labels=("k",))
        f.labels("a")
        with pytest.raises(cachemeter.LimitExceeded, match="max_series"):
            f.labels("b")
    with cachemeter.Cache("memory://?max_entry_bytes=8", "tiny", registry) as c:
        with pytest.raises(cachemeter.LimitExceeded):
            c.set("k", b"0123456789")


@needs_redis
def test_ebackend_a_server_that_breaks_the_protocol(registry):
    # Anything on the port is untrusted: a peer that answers every request
    # with bytes no Redis sends is a protocol error, CM_EBACKEND, not a hang.
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(BOUND)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(BOUND)
                try:
                    while conn.recv(4096):
                        conn.sendall(b"?this is not RESP\r\n")
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with pytest.raises(cachemeter.BackendError):
            with cachemeter.Cache(f"redis://127.0.0.1:{port}/0?timeout_ms=5000", "b", registry) as c:
                c.get("k")
    finally:
        stop.set()
        srv.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        srv.close()
        t.join(BOUND)
        assert not t.is_alive()


@needs_sqlite
def test_persist_to_a_missing_directory_is_unavailable(tmp_path, registry):
    # One SQLite status table (docs/persistence.md, "Statuses"): a file that
    # cannot be created is CM_EUNAVAILABLE for persistence as for a cache.
    with pytest.raises(cachemeter.Unavailable):
        registry.persist(tmp_path / "missing-dir" / "m.db")


def test_etimeout(registry):
    with cachemeter.Cache("memory://?load_timeout_ms=20", "t", registry) as c:
        started, release = threading.Event(), threading.Event()

        def load(key):
            started.set()
            release.wait(BOUND)
            return b"v"

        t = threading.Thread(target=c.get_or_load, args=("k", load))
        t.start()
        try:
            assert started.wait(BOUND)
            with pytest.raises(cachemeter.Timeout):
                c.get_or_load("k", load)
        finally:
            release.set()
            t.join(BOUND)


@needs_http
def test_eunavailable_address_in_use(registry):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(cachemeter.Unavailable):
            cachemeter.Server(registry, listen=f"127.0.0.1:{port}")


@needs_sqlite
def test_eunavailable_unopenable_sqlite(tmp_path, registry):
    with pytest.raises(cachemeter.Unavailable):
        with cachemeter.Cache(f"sqlite://{tmp_path}/nope/x.db", "u", registry) as c:
            c.set("k", b"v")


@needs_sqlite
def test_ecorrupt(tmp_path, registry):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00not sqlite\x00" * 64)
    with pytest.raises(cachemeter.Corrupt):
        registry.persist(bad)


@needs_sqlite
def test_estate(tmp_path, registry):
    with pytest.raises(cachemeter.StateError):
        registry.flush()  # not persisting
    registry.persist(tmp_path / "m.db", interval=0)
    with pytest.raises(cachemeter.StateError):
        registry.persist(tmp_path / "m2.db")


def test_wrong_types_are_type_errors(registry):
    with pytest.raises(TypeError):
        registry.counter(42)
    with pytest.raises(TypeError, match="label names must be str"):
        registry.counter("x", labels=(1,))
    with pytest.raises(ValueError, match="NUL"):
        registry.counter("y", labels=("a\0b",))
    with pytest.raises(TypeError):
        _core.counter_inc("not a series")
