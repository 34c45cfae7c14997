/* SPDX-License-Identifier: Apache-2.0 */
/* tests/persist/test_persist_api.c: the statuses of cm_registry_persist,
 * cm_registry_flush and cm_registry_load (public API). Built with and without
 * SQLite: without it every call is CM_EUNAVAILABLE once its arguments pass. */
#include "cmtest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A fresh path in a fresh directory (removed by the test's end). */
static char dir[64];
static char path[128];

static int make_dir(void **state) {
  (void)state;
  strcpy(dir, "/tmp/cm_persist_api.XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(path, sizeof path, "%s/m.db", dir);
  return 0;
}

static int remove_dir(void **state) {
  (void)state;
  static const char *const suffixes[] = {"", "-lock", "-wal", "-shm", "-journal"};
  char p[160];
  for (size_t i = 0; i < CMT_COUNT(suffixes); i++) {
    snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
    unlink(p);
  }
  return rmdir(dir);
}

static void null_arguments(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry(NULL);
  assert_status(cm_registry_persist(NULL, path, 0), CM_EINVAL);
  assert_contains(cm_errmsg(), "reg");
  assert_status(cm_registry_persist(reg, NULL, 0), CM_EINVAL);
  assert_contains(cm_errmsg(), "path");
  assert_status(cm_registry_persist(reg, "", 0), CM_EINVAL);
  assert_status(cm_registry_flush(NULL), CM_EINVAL);
  assert_status(cm_registry_load(NULL, path), CM_EINVAL);
  assert_status(cm_registry_load(reg, NULL), CM_EINVAL);
  cm_registry_free(reg);
}

static void persist_gauges_option(void **state) {
  (void)state;
  cm_registry *reg = NULL;
  assert_status(cm_registry_new(&reg, "persist_gauges=maybe"), CM_EINVAL);
  assert_contains(cm_errmsg(), "persist_gauges");
  reg = cmt_registry("persist_gauges=true");
  cm_registry_free(reg);
}

#if CM_TEST_WITH_SQLITE
static void flush_without_persist(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry(NULL);
  assert_status(cm_registry_flush(reg), CM_ESTATE);
  assert_contains(cm_errmsg(), "does not persist");
  cm_registry_free(reg);
}

static void persist_twice(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry(NULL);
  assert_status(cm_registry_persist(reg, path, 0), CM_OK);
  assert_status(cm_registry_persist(reg, path, 0), CM_ESTATE);
  assert_contains(cm_errmsg(), "already persists");
  assert_status(cm_registry_flush(reg), CM_OK);
  /* Another registry of the same process: the file has an owner. */
  cm_registry *other = cmt_registry(NULL);
  assert_status(cm_registry_persist(other, path, 0), CM_ESTATE);
  char pid[32];
  snprintf(pid, sizeof pid, "process %ld", (long)getpid());
  assert_contains(cm_errmsg(), pid);
  cm_registry_free(other);
  cm_registry_free(reg);
  /* Freed: the file is free again. */
  reg = cmt_registry(NULL);
  assert_status(cm_registry_persist(reg, path, 0), CM_OK);
  cm_registry_free(reg);
}

static void restore_in_process(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry(NULL);
  cm_family *f;
  cm_series *s;
  assert_status(cm_counter_new(reg, "jobs_total", "Jobs.", NULL, 0, &f), CM_OK);
  assert_status(cm_family_series(f, NULL, 0, &s), CM_OK);
  cm_counter_add(s, 2.5);
  assert_status(cm_registry_persist(reg, path, 0), CM_OK);
  cm_registry_free(reg); /* the last flush */

  reg = cmt_registry(NULL);
  assert_status(cm_registry_persist(reg, path, 0), CM_OK);
  assert_status(cm_counter_new(reg, "jobs_total", "Jobs.", NULL, 0, &f), CM_OK);
  assert_status(cm_family_series(f, NULL, 0, &s), CM_OK);
  assert_double_exact(cm_series_value(s), 2.5);
  cm_counter_add(s, 1);
  assert_status(cm_registry_reset(reg), CM_OK);
  cm_counter_add(s, 4);
  cm_registry_free(reg);

  /* A reset is a reset: what came after it only. Loaded read-only. */
  reg = cmt_registry(NULL);
  assert_status(cm_registry_load(reg, path), CM_OK);
  assert_double_exact(cmt_render_sample(reg, "jobs_total"), 4);
  cm_registry_free(reg);
}

static void load_missing(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry(NULL);
  assert_status(cm_registry_load(reg, path), CM_EINVAL);
  assert_contains(cm_errmsg(), path);
  cm_registry_free(reg);
}
/* A closed cache's series leave the registry, but their last values stay in
 * the file (the counters' history): written by the next flush even when the
 * cache closed before it, and readable with cm_registry_load. */
static void closed_cache_last_values_kept(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry(NULL);
  assert_status(cm_registry_persist(reg, path, 0), CM_OK);
  cm_cache *c = NULL;
  assert_status(cm_cache_open(&c, reg, "gone", "memory://"), CM_OK);
  for (int i = 0; i < 3; i++) assert_status(cm_cache_set(c, "k", 1, "v", 1, 0), CM_OK);
  assert_status(cm_registry_flush(reg), CM_OK);
  assert_status(cm_cache_set(c, "k", 1, "v", 1, 0), CM_OK); /* after the flush */
  cm_cache_close(c);
  assert_double_exact(cmt_render_sample(reg, "cachemeter_cache_sets_total{cache=\"gone\",backend=\"memory\"}"),
                      NAN); /* gone from the registry */
  assert_status(cm_registry_flush(reg), CM_OK);

  cm_registry *view = cmt_registry(NULL);
  assert_status(cm_registry_load(view, path), CM_OK);
  assert_double_exact(cmt_render_sample(view, "cachemeter_cache_sets_total{cache=\"gone\",backend=\"memory\"}"), 4);
  cm_registry_free(view);

  /* Reopened under its name in this process: a new series (a counter reset
   * to Prometheus), whose values replace the old row at the next flush. */
  assert_status(cm_cache_open(&c, reg, "gone", "memory://"), CM_OK);
  assert_status(cm_cache_set(c, "k", 1, "v", 1, 0), CM_OK);
  cm_cache_close(c);
  cm_registry_free(reg); /* last flush */
  view = cmt_registry(NULL);
  assert_status(cm_registry_load(view, path), CM_OK);
  assert_double_exact(cmt_render_sample(view, "cachemeter_cache_sets_total{cache=\"gone\",backend=\"memory\"}"), 1);
  cm_registry_free(view);
}
/* One table maps SQLite's failures to statuses (docs/persistence.md
 * "Statuses"): a file that cannot be opened, created or written is
 * CM_EUNAVAILABLE from cm_cache_open on a sqlite:// URI and from
 * cm_registry_persist alike (persistence used to answer CM_EBACKEND). */
static int open_cache_status(const char *file) {
  char uri[256];
  snprintf(uri, sizeof uri, "sqlite://%s", file);
  cm_registry *reg = cmt_registry(NULL);
  cm_cache *c = NULL;
  int st = cm_cache_open(&c, reg, "c", uri);
  cm_cache_close(c);
  cm_registry_free(reg);
  return st;
}

static int persist_status(const char *file) {
  cm_registry *reg = cmt_registry(NULL);
  int st = cm_registry_persist(reg, file, 0);
  cm_registry_free(reg);
  return st;
}

static void unwritable_file_same_status_for_cache_and_persist(void **state) {
  (void)state;
  char missing[128], file[128], notdir[160], cache_db[128];
  snprintf(missing, sizeof missing, "%s/missing/m.db", dir);
  snprintf(file, sizeof file, "%s/file", dir);
  snprintf(notdir, sizeof notdir, "%s/m.db", file);
  snprintf(cache_db, sizeof cache_db, "%s/c.db", dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);

  assert_status(open_cache_status(missing), CM_EUNAVAILABLE);
  assert_status(persist_status(missing), CM_EUNAVAILABLE);
  assert_contains(cm_errmsg(), "No such file or directory");
  assert_status(open_cache_status(notdir), CM_EUNAVAILABLE);
  assert_status(persist_status(notdir), CM_EUNAVAILABLE);
  assert_contains(cm_errmsg(), "Not a directory");

  /* Read-only files (an existing cache file and an existing metrics file)
   * in a writable directory, opened by a process without root's privileges
   * (root ignores file modes). The child exits with both statuses. */
  assert_status(open_cache_status(cache_db), CM_OK);
  assert_status(persist_status(path), CM_OK);
  assert_int_equal(chmod(cache_db, 0444), 0);
  assert_int_equal(chmod(path, 0444), 0);
  assert_int_equal(chmod(dir, 0777), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(255);
    _exit((-open_cache_status(cache_db)) * 16 + -persist_status(path));
  }
  int wst = 0;
  assert_int_equal(waitpid(pid, &wst, 0), pid);
  assert_true(WIFEXITED(wst));
  assert_int_equal(WEXITSTATUS(wst), (-CM_EUNAVAILABLE) * 16 + -CM_EUNAVAILABLE);

  static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", "-lock"};
  char p[192];
  for (size_t i = 0; i < CMT_COUNT(suffixes); i++) {
    snprintf(p, sizeof p, "%s%s", cache_db, suffixes[i]);
    unlink(p);
  }
  unlink(file);
}
#else
static void unavailable(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry(NULL);
  assert_status(cm_registry_persist(reg, path, 0), CM_EUNAVAILABLE);
  assert_status(cm_registry_flush(reg), CM_EUNAVAILABLE);
  assert_status(cm_registry_load(reg, path), CM_EUNAVAILABLE);
  cm_registry_free(reg);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(null_arguments, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(persist_gauges_option, make_dir, remove_dir),
#if CM_TEST_WITH_SQLITE
      cmocka_unit_test_setup_teardown(flush_without_persist, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(persist_twice, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(restore_in_process, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(load_missing, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(closed_cache_last_values_kept, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(unwritable_file_same_status_for_cache_and_persist, make_dir, remove_dir),
#else
      cmocka_unit_test_setup_teardown(unavailable, make_dir, remove_dir),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
