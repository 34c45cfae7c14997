/* SPDX-License-Identifier: Apache-2.0 */
/* The update methods of a Python series (counter inc, gauge inc/dec/set,
 * histogram observe) as one small C type called by vectorcall: the series
 * handle and the operation are its fields, so `s.inc()` is an attribute load
 * and one C call, with no SWIG argument unpacking and no functools.partial
 * in between (bench/RESULTS.md, "Python inc() on a shared registry"). The
 * C updates keep the GIL: they take a few nanoseconds. */
#include "cmpy.h"

typedef struct {
  PyObject_HEAD
  vectorcallfunc vectorcall;
  cm_series *series;
  int op;          /* cmpy_update_op */
  PyObject *keep;  /* the SWIG handle that owns series (keeps the registry alive) */
} cmpy_update;

static const char *const kOpNames[] = {"counter_inc", "gauge_inc", "gauge_dec", "gauge_set", "histogram_observe"};

/* The argument v: one positional or keyword `v`; counter/gauge inc and dec
 * default to 1. Returns 0, or -1 with an exception set. */
static int update_arg(cmpy_update *u, PyObject *const *args, size_t nargsf, PyObject *kwnames, double *v) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  PyObject *arg = NULL;
  if (nargs + nkw > 1) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", kOpNames[u->op], nargs + nkw);
    return -1;
  }
  if (nargs == 1) {
    arg = args[0];
  } else if (nkw == 1) {
    if (!PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0)) ||
        PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "v") != 0) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", kOpNames[u->op],
                   PyTuple_GET_ITEM(kwnames, 0));
      return -1;
    }
    arg = args[0];
  }
  if (arg == NULL) {
    if (u->op == CMPY_GAUGE_SET || u->op == CMPY_HISTOGRAM_OBSERVE) {
      PyErr_Format(PyExc_TypeError, "%s() missing its argument v", kOpNames[u->op]);
      return -1;
    }
    *v = 1.0;
    return 0;
  }
  if (PyFloat_CheckExact(arg)) {
    *v = PyFloat_AS_DOUBLE(arg);
    return 0;
  }
  double d = PyFloat_AsDouble(arg);
  if (d == -1.0 && PyErr_Occurred()) return -1;
  *v = d;
  return 0;
}

static PyObject *update_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
  cmpy_update *u = (cmpy_update *)self;
  double v;
  if (update_arg(u, args, nargsf, kwnames, &v) < 0) return NULL;
  /* The same C calls as the SWIG wrappers make: the same rules and errors. */
  switch (u->op) {
    case CMPY_COUNTER_INC: return cmpy_counter_inc(u->series, v);
    case CMPY_GAUGE_INC: return cmpy_gauge_add(u->series, v);
    case CMPY_GAUGE_DEC: return cmpy_gauge_dec(u->series, v);
    case CMPY_GAUGE_SET: return cmpy_gauge_set(u->series, v);
    default: return cmpy_histogram_observe(u->series, v);
  }
}

static void update_dealloc(PyObject *self) {
  cmpy_update *u = (cmpy_update *)self;
  PyObject_GC_UnTrack(self);
  Py_CLEAR(u->keep);
  PyObject_GC_Del(self);
}

static int update_traverse(PyObject *self, visitproc visit, void *arg) {
  Py_VISIT(((cmpy_update *)self)->keep);
  return 0;
}

static PyObject *update_repr(PyObject *self) {
  cmpy_update *u = (cmpy_update *)self;
  return PyUnicode_FromFormat("<cachemeter update %s of series %p>", kOpNames[u->op], (void *)u->series);
}

static PyTypeObject SeriesUpdateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cachemeter._core.SeriesUpdate",
    .tp_basicsize = sizeof(cmpy_update),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A bound update of one series: call it with the value (see Counter.inc, Gauge.set, ...).",
    .tp_dealloc = update_dealloc,
    .tp_traverse = update_traverse,
    .tp_repr = update_repr,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(cmpy_update, vectorcall),
};

PyObject *cmpy_series_update(cm_series *s, int op, PyObject *keep) {
  if (s == NULL || op < 0 || op > CMPY_HISTOGRAM_OBSERVE) {
    cmpy_raise_msg(CM_EINVAL, "series_update: no series, or an unknown operation");
    return NULL;
  }
  cmpy_update *u = PyObject_GC_New(cmpy_update, &SeriesUpdateType);
  if (u == NULL) return NULL;
  u->vectorcall = update_call;
  u->series = s;
  u->op = op;
  Py_INCREF(keep);
  u->keep = keep;
  PyObject_GC_Track((PyObject *)u);
  return (PyObject *)u;
}

int cmpy_update_init(PyObject *module) {
  if (PyType_Ready(&SeriesUpdateType) < 0) return -1;
  Py_INCREF(&SeriesUpdateType);
  if (PyModule_AddObject(module, "SeriesUpdate", (PyObject *)&SeriesUpdateType) < 0) {
    Py_DECREF(&SeriesUpdateType);
    return -1;
  }
  return 0;
}
