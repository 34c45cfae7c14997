/* SPDX-License-Identifier: Apache-2.0 */
/* consumer: a program outside the project, built against an installed
 * cachemeter (pkg-config or find_package) by tests/packaging/check_install.sh.
 * Public API only: a registry, a labelled counter, Prometheus text. */
#include <cachemeter/cachemeter.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what) {
  fprintf(stderr, "consumer: %s failed: %s\n", what, cm_errmsg());
  return 1;
}

int main(void) {
  /* The installed headers and the library the loader found must agree. */
  if (strcmp(cm_version(), CM_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: headers %s but library %s\n", CM_VERSION_STRING, cm_version());
    return 1;
  }

  cm_registry *reg = NULL;
  cm_family *requests = NULL;
  cm_series *get = NULL;
  const char *label_names[] = {"method"};
  const char *label_values[] = {"get"};
  if (cm_registry_new(&reg, NULL) != CM_OK) return fail("cm_registry_new");
  if (cm_counter_new(reg, "consumer_requests", "Requests seen by the consumer.", label_names, 1,
                     &requests) != CM_OK)
    return fail("cm_counter_new");
  if (cm_family_series(requests, label_values, 1, &get) != CM_OK)
    return fail("cm_family_series");
  cm_counter_add(get, 3);

  char *text = NULL;
  if (cm_registry_render(reg, CM_FORMAT_PROMETHEUS, &text, NULL) != CM_OK)
    return fail("cm_registry_render");
  printf("consumer: cachemeter %s\n%s", cm_version(), text);
  cm_free(text);
  cm_registry_free(reg);
  return 0;
}
