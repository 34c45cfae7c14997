/* SPDX-License-Identifier: Apache-2.0 */
/* The @cached value codec of the Python binding (bindings/python/
 * cmpy_cached.c, the marshal subset), linked as it is into an embedded
 * interpreter. A value read from a shared backend is hostile input: decoding
 * it must fail with cachemeter's error (a RuntimeError carrying CM_ECORRUPT
 * here, where cachemeter._errors has not registered its classes) or
 * MemoryError, never another exception, a crash or unbounded memory. What
 * decodes must encode again, and that encoding must decode and encode to
 * the same bytes (a canonical form). C, not C++: Python's macros are C. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmpy.h" /* Python.h first */

static void fail(const char *what) {
  fprintf(stderr, "FUZZ CHECK FAILED: %s\n", what);
  if (PyErr_Occurred()) PyErr_Print();
  abort();
}

/* The exception a failed decode left: ours (RuntimeError "CM_ECORRUPT: ...")
 * or MemoryError. */
static void check_error(void) {
  if (!PyErr_Occurred()) fail("decode returned NULL without an exception");
  if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
    PyErr_Clear();
    return;
  }
  if (!PyErr_ExceptionMatches(PyExc_RuntimeError)) fail("decode raised something other than cachemeter's error");
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyObject *s = value ? PyObject_Str(value) : NULL;
  const char *text = s ? PyUnicode_AsUTF8(s) : NULL;
  if (!text || strncmp(text, "CM_ECORRUPT", 11) != 0) {
    PyErr_Restore(type, value, tb);
    fail("decode failed with a status other than CM_ECORRUPT");
  }
  Py_XDECREF(s);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
}

/* The interpreter's own allocations live until exit: not ours to report. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libpython3\n"; }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  Py_InitializeEx(0); /* no signal handlers: libFuzzer keeps its own */
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  PyObject *in = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size);
  if (in == NULL) fail("PyBytes_FromStringAndSize");
  PyObject *obj = cmpy_codec_loads(in);
  Py_DECREF(in);
  if (obj == NULL) {
    check_error();
    return 0;
  }
  PyObject *enc = cmpy_codec_dumps(obj);
  Py_DECREF(obj);
  if (enc == NULL) fail("codec_dumps failed on what codec_loads returned");
  if (enc == Py_None) { /* decodable but not what the encoder writes (see README.md) */
    Py_DECREF(enc);
    return 0;
  }
  PyObject *again = cmpy_codec_loads(enc);
  if (again == NULL) fail("codec_loads refused what codec_dumps wrote");
  PyObject *enc2 = cmpy_codec_dumps(again);
  Py_DECREF(again);
  if (enc2 == NULL || !PyBytes_Check(enc2)) fail("codec_dumps failed on a round trip");
  if (PyBytes_GET_SIZE(enc) != PyBytes_GET_SIZE(enc2) ||
      memcmp(PyBytes_AS_STRING(enc), PyBytes_AS_STRING(enc2), (size_t)PyBytes_GET_SIZE(enc)) != 0)
    fail("encode(decode(encode(x))) differs from encode(x)");
  Py_DECREF(enc);
  Py_DECREF(enc2);
  return 0;
}
