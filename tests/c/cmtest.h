/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/cmtest.h: assertions and fixtures shared by the cmocka tests of the
 * public C API. cmocka's own assertions print integers and strings; these add
 * what our API needs: statuses by name with cm_errmsg(), exact doubles (NaN
 * equal to NaN), substring checks on rendered text, sample lookup. */
#ifndef CMTEST_H
#define CMTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cachemeter/cachemeter.h>

#define CMT_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Fails unless expr returned want; prints both statuses by name and cm_errmsg(). */
#define assert_status(expr, want) \
  cmt_assert_status((expr), (want), #expr, __FILE__, __LINE__)
void cmt_assert_status(int got, int want, const char *expr, const char *file, int line);

/* Bit-for-bit double comparison, except that any NaN equals any NaN. */
#define assert_double_exact(got, want) \
  cmt_assert_double((got), (want), #got, __FILE__, __LINE__)
void cmt_assert_double(double got, double want, const char *expr, const char *file,
                       int line);

/* Substring presence / absence in text (rendered output, cm_errmsg()). */
#define assert_contains(text, needle) \
  cmt_assert_contains((text), (needle), 1, __FILE__, __LINE__)
#define assert_not_contains(text, needle) \
  cmt_assert_contains((text), (needle), 0, __FILE__, __LINE__)
void cmt_assert_contains(const char *text, const char *needle, int want, const char *file,
                         int line);

/* Calls the void function-call expression expr after clearing cm_errmsg(),
 * then checks that it reported a failure mentioning needle (NULL: any
 * non-empty message). */
#define assert_reports(expr, needle)                                     \
  do {                                                                   \
    cm_errclear();                                                       \
    expr;                                                                \
    cmt_assert_reported(#expr, (needle), __FILE__, __LINE__);            \
  } while (0)
void cmt_assert_reported(const char *expr, const char *needle, const char *file, int line);

/* Exact text comparison that shows both texts and the first differing line. */
#define assert_text(got, want) cmt_assert_text((got), (want), __FILE__, __LINE__)
void cmt_assert_text(const char *got, const char *want, const char *file, int line);

/* Renders reg in format, asserting CM_OK and that *len matches the text.
 * The caller releases the result with cm_free(). */
char *cmt_render(cm_registry *reg, int format);

/* The value of the sample line "<key> <value>" in Prometheus/OpenMetrics
 * text (key is the metric name with its {labels} as rendered), NaN when no
 * such line exists. */
double cmt_sample(const char *text, const char *key);

/* cmt_sample() on a fresh Prometheus rendering of reg. */
double cmt_render_sample(cm_registry *reg, const char *key);

/* Group/test fixtures: *state becomes a fresh registry with default options. */
int cmt_registry_setup(void **state);
int cmt_registry_teardown(void **state);

/* A fresh registry with the given options, asserting CM_OK. */
cm_registry *cmt_registry(const char *options);

#endif /* CMTEST_H */
