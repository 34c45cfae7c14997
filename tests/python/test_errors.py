"""Status -> exception: every status of the C API maps to a class, each
class carries its status and cm_errmsg(), and each status the C API can
produce is provoked for real from Python (CM_ENOMEM cannot be, and is
checked through the mapping alone)."""
from __future__ import annotations

import socket
import threading

import pytest

import cachemeter
from cachemeter import _core, _errors
from conftest import BOUND, needs_http, needs_sqlite

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


@needs_sqlite
def test_ebackend(tmp_path, registry):
    with pytest.raises(cachemeter.BackendError):
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
