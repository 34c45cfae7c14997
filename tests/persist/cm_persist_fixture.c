/* SPDX-License-Identifier: Apache-2.0 */
/* tests/persist/cm_persist_fixture.c: a process that records known metrics
 * into a persisted registry, driven from its standard input, for the
 * persistence tests (test_persist.py). Public API only.
 *
 * usage: cm_persist_fixture [--options OPTS]   (OPTS: cm_registry_new options)
 * Reads commands, one per line; every command's answer ends with a line
 * "OK ..." or "ERR <STATUS_NAME> <cm_errmsg()>":
 *   persist <path> <interval_ms>       cm_registry_persist
 *   flush                              cm_registry_flush
 *   counter <name> <lv> <v>            counter <name> (label "l" = lv; lv "-":
 *                                      no label) += v; answers "OK <value>"
 *   gauge <name> <v|none>              gauge <name> = v; "OK <value>"
 *   histogram <name> <bounds|-> <lv> <v|none>
 *                                      histogram (bounds "0.1,1,10", "-" for
 *                                      the default; label "l" = lv, "-": none)
 *                                      observes v; "OK <count> <sum>"
 *   errmsg                             "OK <cm_errmsg()>" (cleared by every
 *                                      counter/gauge/histogram command first)
 *   render <prometheus|openmetrics|json>  the text, then "OK"
 *   flushloop <n>                      n times (0: forever): loop_total += 1,
 *                                      loop_seconds observes 0.5, flush, then
 *                                      print "FLUSHED <i>" once it completed
 *   reset                              cm_registry_reset
 *   crash                              raise(SIGKILL): no clean exit
 *   quit                               cm_registry_free (last flush), exit 0
 * Values are printed with %.17g. Exit 2 on bad arguments, 1 on a failure
 * outside a command. */
#define _POSIX_C_SOURCE 200809L
#include <cachemeter/cachemeter.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cm_registry *reg;

static int err(int rc) {
  printf("ERR %s %s\n", cm_status_name(rc), cm_errmsg());
  return rc;
}

/* Splits "0.1,1,10" into bounds; returns the count ("-": 0). */
static size_t parse_bounds(char *text, double *bounds, size_t max) {
  size_t n = 0;
  if (strcmp(text, "-") == 0) return 0;
  for (char *save = NULL, *tok = strtok_r(text, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
    bounds[n++] = strtod(tok, NULL);
  return n;
}

/* The series of a family with label "l" = lv (or no label for "-"). */
static int series_of(cm_family *f, const char *lv, cm_series **out) {
  if (strcmp(lv, "-") == 0) return cm_family_series(f, NULL, 0, out);
  const char *values[] = {lv};
  return cm_family_series(f, values, 1, out);
}

static int cmd_counter(const char *name, const char *lv, double v) {
  const char *labels[] = {"l"};
  size_t n = strcmp(lv, "-") == 0 ? 0 : 1;
  cm_family *f;
  cm_series *s;
  int rc;
  if ((rc = cm_counter_new(reg, name, "A fixture counter.", labels, n, &f)) || (rc = series_of(f, lv, &s)))
    return err(rc);
  cm_counter_add(s, v);
  printf("OK %.17g\n", cm_series_value(s));
  return CM_OK;
}

static int cmd_histogram(const char *name, char *bounds_text, const char *lv, const char *v) {
  const char *labels[] = {"l"};
  size_t n = strcmp(lv, "-") == 0 ? 0 : 1;
  double bounds[64];
  size_t nb = parse_bounds(bounds_text, bounds, 64);
  cm_family *f;
  cm_series *s;
  int rc;
  if ((rc = cm_histogram_new(reg, name, "A fixture histogram.", labels, n, nb ? bounds : NULL, nb, &f)) ||
      (rc = series_of(f, lv, &s)))
    return err(rc);
  if (strcmp(v, "none") != 0) cm_histogram_observe(s, strtod(v, NULL));
  printf("OK %.17g %.17g\n", cm_series_value(s), cm_histogram_sum(s));
  return CM_OK;
}

static int flushloop(long n) {
  cm_family *cf, *hf;
  cm_series *c, *h;
  int rc;
  if ((rc = cm_counter_new(reg, "loop_total", "Flush loop iterations.", NULL, 0, &cf)) ||
      (rc = cm_family_series(cf, NULL, 0, &c)) ||
      (rc = cm_histogram_new(reg, "loop_seconds", "Flush loop observations.", NULL, 0, NULL, 0, &hf)) ||
      (rc = cm_family_series(hf, NULL, 0, &h)))
    return err(rc);
  for (long i = 1; n == 0 || i <= n; ++i) {
    cm_counter_add(c, 1);
    cm_histogram_observe(h, 0.5);
    if ((rc = cm_registry_flush(reg)) != CM_OK) return err(rc);
    printf("FLUSHED %.17g %.17g\n", cm_series_value(c), cm_series_value(h));
    fflush(stdout);
  }
  printf("OK\n");
  return CM_OK;
}

int main(int argc, char **argv) {
  const char *options = NULL;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--options") == 0) {
      options = argv[++i];
    } else {
      fprintf(stderr, "usage: cm_persist_fixture [--options OPTS]\n");
      return 2;
    }
  }
  int rc = cm_registry_new(&reg, options);
  if (rc != CM_OK) {
    fprintf(stderr, "cm_persist_fixture: cm_registry_new: %s: %s\n", cm_status_name(rc), cm_errmsg());
    return 1;
  }
  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    char *save = NULL;
    char *argv_[8] = {0};
    int n = 0;
    for (char *tok = strtok_r(line, " \t\r\n", &save); tok && n < 8; tok = strtok_r(NULL, " \t\r\n", &save))
      argv_[n++] = tok;
    if (n == 0) continue;
    const char *cmd = argv_[0];
    if (strcmp(cmd, "persist") == 0 && n == 3) {
      rc = cm_registry_persist(reg, argv_[1], (unsigned)strtoul(argv_[2], NULL, 10));
      if (rc == CM_OK) printf("OK\n"); else err(rc);
    } else if (strcmp(cmd, "flush") == 0) {
      rc = cm_registry_flush(reg);
      if (rc == CM_OK) printf("OK\n"); else err(rc);
    } else if (strcmp(cmd, "counter") == 0 && n == 4) {
      cm_errclear();
      cmd_counter(argv_[1], argv_[2], strtod(argv_[3], NULL));
    } else if (strcmp(cmd, "gauge") == 0 && n == 3) {
      cm_family *f;
      cm_series *s;
      cm_errclear();
      if ((rc = cm_gauge_new(reg, argv_[1], "A fixture gauge.", NULL, 0, &f)) ||
          (rc = cm_family_series(f, NULL, 0, &s))) {
        err(rc);
      } else {
        if (strcmp(argv_[2], "none") != 0) cm_gauge_set(s, strtod(argv_[2], NULL));
        printf("OK %.17g\n", cm_series_value(s));
      }
    } else if (strcmp(cmd, "histogram") == 0 && n == 5) {
      cm_errclear();
      cmd_histogram(argv_[1], argv_[2], argv_[3], argv_[4]);
    } else if (strcmp(cmd, "errmsg") == 0) {
      printf("OK %s\n", cm_errmsg());
    } else if (strcmp(cmd, "render") == 0 && n == 2) {
      int format = strcmp(argv_[1], "json") == 0          ? CM_FORMAT_JSON
                   : strcmp(argv_[1], "openmetrics") == 0 ? CM_FORMAT_OPENMETRICS
                                                          : CM_FORMAT_PROMETHEUS;
      char *text = NULL;
      size_t len = 0;
      if ((rc = cm_registry_render(reg, format, &text, &len)) != CM_OK) {
        err(rc);
      } else {
        fwrite(text, 1, len, stdout);
        if (len && text[len - 1] != '\n') putchar('\n');
        printf("OK\n");
        cm_free(text);
      }
    } else if (strcmp(cmd, "flushloop") == 0 && n == 2) {
      flushloop(strtol(argv_[1], NULL, 10));
    } else if (strcmp(cmd, "reset") == 0) {
      rc = cm_registry_reset(reg);
      if (rc == CM_OK) printf("OK\n"); else err(rc);
    } else if (strcmp(cmd, "crash") == 0) {
      fflush(stdout);
      raise(SIGKILL);
    } else if (strcmp(cmd, "quit") == 0) {
      break;
    } else {
      printf("ERR CM_EINVAL unknown command or wrong argument count: %s\n", cmd);
    }
    fflush(stdout);
  }
  cm_registry_free(reg);
  printf("OK\n");
  return 0;
}
