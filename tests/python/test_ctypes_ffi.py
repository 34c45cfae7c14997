# SPDX-License-Identifier: Apache-2.0
"""FFI without SWIG: libcachemeter.so driven from ctypes alone (no cachemeter
package), proving the ABI needs nothing but C types: a registry, a counter,
a memory cache (set/get, and get_or_load with a ctypes callback loader),
rendering, error messages, and frees.

CM_LIBCACHEMETER names the library (CTest sets it to the build's); run as a
script it does the same checks in a process that cannot import cachemeter.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from ctypes import (CFUNCTYPE, POINTER, byref, c_char_p, c_double, c_int, c_int64, c_size_t, c_void_p,
                    string_at)

CM_OK, CM_MISS, CM_EINVAL, CM_FORMAT_PROMETHEUS = 0, 1, -1, 0
LOADER = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t))


def load_library():
    path = os.environ.get("CM_LIBCACHEMETER", "libcachemeter.so.0")
    lib = ctypes.CDLL(path)
    sig = {
        "cm_version": (c_char_p, []),
        "cm_version_number": (c_int, []),
        "cm_strerror": (c_char_p, [c_int]),
        "cm_status_name": (c_char_p, [c_int]),
        "cm_errmsg": (c_char_p, []),
        "cm_alloc": (c_void_p, [c_size_t]),
        "cm_free": (None, [c_void_p]),
        "cm_registry_new": (c_int, [POINTER(c_void_p), c_char_p]),
        "cm_registry_free": (None, [c_void_p]),
        "cm_counter_new": (c_int, [c_void_p, c_char_p, c_char_p, POINTER(c_char_p), c_size_t, POINTER(c_void_p)]),
        "cm_family_series": (c_int, [c_void_p, POINTER(c_char_p), c_size_t, POINTER(c_void_p)]),
        "cm_counter_add": (None, [c_void_p, c_double]),
        "cm_series_value": (c_double, [c_void_p]),
        "cm_registry_render": (c_int, [c_void_p, c_int, POINTER(c_void_p), POINTER(c_size_t)]),
        "cm_cache_open": (c_int, [POINTER(c_void_p), c_void_p, c_char_p, c_char_p]),
        "cm_cache_close": (None, [c_void_p]),
        "cm_cache_set": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_int64]),
        "cm_cache_get": (c_int, [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)]),
        "cm_cache_get_or_load": (c_int, [c_void_p, c_char_p, c_size_t, LOADER, c_void_p, c_int64,
                                         POINTER(c_void_p), POINTER(c_size_t)]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def strings(*items):
    return (c_char_p * len(items))(*[s.encode() for s in items])


def check_everything(lib):
    assert lib.cm_version().decode().count(".") == 2
    assert lib.cm_version_number() > 0
    assert lib.cm_strerror(CM_EINVAL) == b"invalid argument"
    assert lib.cm_status_name(CM_MISS) == b"CM_MISS"

    reg = c_void_p()
    assert lib.cm_registry_new(byref(reg), b"prefix=ffi_&const_labels=via:ctypes") == CM_OK and reg
    try:
        fam, series = c_void_p(), c_void_p()
        assert lib.cm_counter_new(reg, b"requests", b"Requests.", strings("code"), 1, byref(fam)) == CM_OK
        assert lib.cm_family_series(fam, strings("200"), 1, byref(series)) == CM_OK
        for _ in range(3):
            lib.cm_counter_add(series, 1.0)
        assert lib.cm_series_value(series) == 3.0

        # a failure: a status and the calling thread's message
        bad = c_void_p()
        assert lib.cm_counter_new(reg, b"1bad", None, None, 0, byref(bad)) == CM_EINVAL
        assert b"1bad" in lib.cm_errmsg()

        cache = c_void_p()
        assert lib.cm_cache_open(byref(cache), reg, b"ffi", b"memory://?max_entries=10") == CM_OK
        try:
            assert lib.cm_cache_set(cache, b"k\0ey", 4, b"val\0ue", 6, 0) == CM_OK
            val, n = c_void_p(), c_size_t()
            assert lib.cm_cache_get(cache, b"k\0ey", 4, byref(val), byref(n)) == CM_OK
            assert string_at(val, n.value) == b"val\0ue"
            lib.cm_free(val)
            assert lib.cm_cache_get(cache, b"nope", 4, byref(val), byref(n)) == CM_MISS and not val

            calls = []

            @LOADER
            def loader(ctx, key, klen, out, outlen):  # hands back a cm_alloc() buffer
                data = b"loaded:" + string_at(key, klen)
                calls.append(data)
                buf = lib.cm_alloc(len(data))
                ctypes.memmove(buf, data, len(data))
                out[0], outlen[0] = buf, len(data)
                return CM_OK

            for _ in range(2):
                assert lib.cm_cache_get_or_load(cache, b"lazy", 4, loader, None, 0, byref(val), byref(n)) == CM_OK
                assert string_at(val, n.value) == b"loaded:lazy"
                lib.cm_free(val)
            assert calls == [b"loaded:lazy"]  # the second call was a hit
            assert 'ffi_cache_hits_total{' in render(lib, reg)  # the cache's metrics, under the registry's prefix
        finally:
            lib.cm_cache_close(cache)

        body = render(lib, reg)
        assert 'requests_total{via="ctypes",code="200"} 3' in body, body
        assert 'ffi_cache_hits_total{' not in body  # a closed cache's series leave the registry
    finally:
        lib.cm_registry_free(reg)
    lib.cm_registry_free(None)  # NULL is a no-op
    lib.cm_cache_close(None)
    lib.cm_free(None)


def render(lib, reg):
    text, length = c_void_p(), c_size_t()
    assert lib.cm_registry_render(reg, CM_FORMAT_PROMETHEUS, byref(text), byref(length)) == CM_OK
    body = string_at(text, length.value).decode()
    lib.cm_free(text)
    return body


def test_ctypes_only():
    check_everything(load_library())


def test_in_a_process_without_the_binding():
    """The same checks where `import cachemeter` cannot succeed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-S", __file__], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ctypes checks passed; cachemeter not importable" in r.stdout


if __name__ == "__main__":
    try:
        import cachemeter  # noqa: F401
    except ImportError:
        pass
    else:
        sys.exit("cachemeter is importable here: this check must run without it")
    check_everything(load_library())
    print("ctypes checks passed; cachemeter not importable")
