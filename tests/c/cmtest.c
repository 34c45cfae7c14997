/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/cmtest.c: the shared assertions and fixtures of cmtest.h. */
#include "cmtest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cmt_assert_status(int got, int want, const char *expr, const char *file, int line) {
  if (got == want) return;
  print_error("%s returned %s (%d), expected %s (%d); cm_errmsg: \"%s\"\n", expr,
              cm_status_name(got), got, cm_status_name(want), want, cm_errmsg());
  _fail(file, line);
}

void cmt_assert_double(double got, double want, const char *expr, const char *file,
                       int line) {
  if (isnan(got) && isnan(want)) return;
  if (!isnan(got) && !isnan(want) && got == want && signbit(got) == signbit(want)) return;
  print_error("%s is %.17g, expected %.17g\n", expr, got, want);
  _fail(file, line);
}

void cmt_assert_contains(const char *text, const char *needle, int want, const char *file,
                         int line) {
  if (text == NULL) {
    print_error("text is NULL while looking for \"%s\"\n", needle);
    _fail(file, line);
    return;
  }
  if ((strstr(text, needle) != NULL) == (want != 0)) return;
  print_error("\"%s\" %s in:\n%s\n", needle, want ? "not found" : "unexpectedly found", text);
  _fail(file, line);
}

void cmt_assert_reported(const char *expr, const char *needle, const char *file, int line) {
  const char *msg = cm_errmsg();
  if (msg[0] != '\0' && (needle == NULL || strstr(msg, needle) != NULL)) return;
  print_error("%s left cm_errmsg \"%s\", expected a message containing \"%s\"\n", expr, msg,
              needle ? needle : "");
  _fail(file, line);
}

void cmt_assert_text(const char *got, const char *want, const char *file, int line) {
  if (got != NULL && strcmp(got, want) == 0) return;
  if (got == NULL) {
    print_error("text is NULL, expected:\n%s", want);
    _fail(file, line);
    return;
  }
  /* Locate the first differing line so a long rendering stays readable. */
  size_t i = 0, line_start = 0, lineno = 1;
  while (got[i] != '\0' && got[i] == want[i]) {
    if (got[i] == '\n') {
      line_start = i + 1;
      lineno++;
    }
    i++;
  }
  print_error("texts differ at line %zu:\n  got:  \"%.80s\"\n  want: \"%.80s\"\n"
              "---- got ----\n%s---- want ----\n%s----\n",
              lineno, got + line_start, want + line_start, got, want);
  _fail(file, line);
}

char *cmt_render(cm_registry *reg, int format) {
  char *out = NULL;
  size_t len = (size_t)-1;
  assert_status(cm_registry_render(reg, format, &out, &len), CM_OK);
  assert_non_null(out);
  assert_int_equal(len, strlen(out));
  return out;
}

double cmt_sample(const char *text, const char *key) {
  size_t klen = strlen(key);
  for (const char *p = text; p != NULL && *p != '\0';) {
    if (strncmp(p, key, klen) == 0 && p[klen] == ' ') return strtod(p + klen + 1, NULL);
    p = strchr(p, '\n');
    if (p != NULL) p++;
  }
  return NAN;
}

double cmt_render_sample(cm_registry *reg, const char *key) {
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  double v = cmt_sample(text, key);
  cm_free(text);
  return v;
}

cm_registry *cmt_registry(const char *options) {
  cm_registry *reg = NULL;
  assert_status(cm_registry_new(&reg, options), CM_OK);
  assert_non_null(reg);
  return reg;
}

int cmt_registry_setup(void **state) {
  *state = cmt_registry(NULL);
  return 0;
}

int cmt_registry_teardown(void **state) {
  cm_registry_free(*state);
  *state = NULL;
  return 0;
}
