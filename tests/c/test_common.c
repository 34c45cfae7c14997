/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/test_common.c: common.h — versions, status names and messages, the
 * per-thread error message and the allocator. */
#include "cmtest.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The out-of-memory test asks for SIZE_MAX bytes; sanitizers abort on that by
 * default instead of returning NULL like malloc must. */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif
#if defined(__SANITIZE_THREAD__)
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

static void version_matches_header(void **state) {
  (void)state;
  char expect[32];
  snprintf(expect, sizeof expect, "%d.%d.%d", CM_VERSION_MAJOR, CM_VERSION_MINOR,
           CM_VERSION_PATCH);
  assert_string_equal(CM_VERSION_STRING, expect);
  assert_string_equal(cm_version(), CM_VERSION_STRING);
  assert_int_equal(cm_version_number(), CM_VERSION_NUMBER);
  assert_int_equal(CM_VERSION_NUMBER,
                   CM_VERSION_MAJOR * 10000 + CM_VERSION_MINOR * 100 + CM_VERSION_PATCH);
}

/* Each status keeps the value and name of DESIGN.md section 3, and the status
 * list (the one source of the enum, names and messages) holds exactly them. */
static void status_names_and_messages(void **state) {
  (void)state;
  static const struct {
    int status, value;
    const char *name;
  } contract[] = {
      {CM_OK, 0, "CM_OK"},
      {CM_MISS, 1, "CM_MISS"},
      {CM_EINVAL, -1, "CM_EINVAL"},
      {CM_ENOMEM, -2, "CM_ENOMEM"},
      {CM_EEXIST, -3, "CM_EEXIST"},
      {CM_ELIMIT, -4, "CM_ELIMIT"},
      {CM_EBACKEND, -5, "CM_EBACKEND"},
      {CM_ETIMEOUT, -6, "CM_ETIMEOUT"},
      {CM_EUNAVAILABLE, -7, "CM_EUNAVAILABLE"},
      {CM_ECORRUPT, -8, "CM_ECORRUPT"},
      {CM_ESTATE, -9, "CM_ESTATE"},
  };
  static const struct {
    int value;
    const char *name, *msg;
  } map[] = {
#define ROW(name, value, msg) {value, #name, msg},
      CM_STATUS_MAP(ROW)
#undef ROW
  };
  assert_int_equal(CMT_COUNT(map), CMT_COUNT(contract));
  for (size_t i = 0; i < CMT_COUNT(contract); i++) {
    assert_int_equal(contract[i].status, contract[i].value);
    assert_int_equal(map[i].value, contract[i].value);
    assert_string_equal(map[i].name, contract[i].name);
    assert_string_equal(cm_status_name(contract[i].status), contract[i].name);
    assert_string_equal(cm_strerror(contract[i].status), map[i].msg);
    assert_true(strlen(map[i].msg) > 0);
    /* Messages tell statuses apart. */
    for (size_t j = 0; j < i; j++) assert_string_not_equal(map[i].msg, map[j].msg);
  }
}

static void unknown_status(void **state) {
  (void)state;
  static const int unknown[] = {2, -10, 100, -1000, INT32_MIN, INT32_MAX};
  for (size_t i = 0; i < CMT_COUNT(unknown); i++) {
    assert_string_equal(cm_strerror(unknown[i]), "unknown status");
    assert_string_equal(cm_status_name(unknown[i]), "CM_UNKNOWN");
  }
}

/* Provokes a CM_EINVAL with a recognisable message on the calling thread. */
static void fail_on_this_thread(void) {
  assert_status(cm_registry_new(NULL, NULL), CM_EINVAL);
}

static void errmsg_set_kept_and_cleared(void **state) {
  (void)state;
  cm_errclear();
  assert_string_equal(cm_errmsg(), "");
  fail_on_this_thread();
  char first[256];
  snprintf(first, sizeof first, "%s", cm_errmsg());
  assert_true(strlen(first) > 0);
  assert_contains(first, "cm_registry_new");

  /* A successful call leaves the message alone, like errno. */
  cm_registry *reg = cmt_registry(NULL);
  assert_string_equal(cm_errmsg(), first);
  cm_registry_free(reg);
  assert_string_equal(cm_errmsg(), first);

  /* A later failure replaces it. */
  cm_family *f = NULL;
  assert_status(cm_gauge_new(NULL, "1bad", NULL, NULL, 0, &f), CM_EINVAL);
  assert_contains(cm_errmsg(), "1bad");

  cm_errclear();
  assert_string_equal(cm_errmsg(), "");
  cm_errclear(); /* idempotent */
  assert_string_equal(cm_errmsg(), "");
}

struct thread_view {
  char before[256]; /* what the thread saw before failing itself */
  char after[256];  /* its own message after failing */
};

static void *other_thread(void *arg) {
  struct thread_view *v = arg;
  snprintf(v->before, sizeof v->before, "%s", cm_errmsg());
  cm_family *f = NULL;
  (void)cm_counter_new(NULL, "other thread", NULL, NULL, 0, &f);
  snprintf(v->after, sizeof v->after, "%s", cm_errmsg());
  return NULL;
}

/* A failure on one thread is invisible to another, in both directions. */
static void errmsg_is_per_thread(void **state) {
  (void)state;
  fail_on_this_thread();
  char mine[256];
  snprintf(mine, sizeof mine, "%s", cm_errmsg());
  assert_true(strlen(mine) > 0);

  struct thread_view v;
  memset(&v, 0, sizeof v);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, other_thread, &v), 0);
  assert_int_equal(pthread_join(t, NULL), 0);

  assert_string_equal(v.before, "");
  assert_contains(v.after, "other thread");
  assert_string_equal(cm_errmsg(), mine);
  cm_errclear();
}

static void alloc_and_free(void **state) {
  (void)state;
  unsigned char *p = cm_alloc(64);
  assert_non_null(p);
  memset(p, 0xab, 64); /* writable over its whole size (ASan checks) */
  cm_free(p);

  /* n == 0 gives unique non-NULL pointers. */
  void *a = cm_alloc(0), *b = cm_alloc(0);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  cm_free(a);
  cm_free(b);

  cm_free(NULL);
}

static void alloc_out_of_memory(void **state) {
  (void)state;
  assert_null(cm_alloc(SIZE_MAX));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(version_matches_header),
      cmocka_unit_test(status_names_and_messages),
      cmocka_unit_test(unknown_status),
      cmocka_unit_test(errmsg_set_kept_and_cleared),
      cmocka_unit_test(errmsg_is_per_thread),
      cmocka_unit_test(alloc_and_free),
      cmocka_unit_test(alloc_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
