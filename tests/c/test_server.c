/* tests/c/test_server.c: cm_server_start / cm_server_port / cm_server_stop
 * through the shared library: every status, bad listen addresses and
 * options, a port already in use, and one real request over a socket (the
 * endpoints themselves are tested in tests/http). */
#include "cmtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static cm_server *start_ok(cm_registry *reg, const char *listen, const char *options) {
  cm_server *s = NULL;
  assert_status(cm_server_start(&s, reg, listen, options), CM_OK);
  assert_non_null(s);
  assert_true(cm_server_port(s) > 0);
  return s;
}

/* GET path on 127.0.0.1:port with a raw socket; the response in buf. */
static size_t http_get(int port, const char *path, char *buf, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char req[256];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
  assert_int_equal(write(fd, req, (size_t)n), n);
  size_t got = 0;
  ssize_t r;
  while (got + 1 < cap && (r = read(fd, buf + got, cap - 1 - got)) > 0) got += (size_t)r;
  buf[got] = '\0';
  close(fd);
  return got;
}

static void serves_a_registry(void **state) {
  cm_registry *reg = *state;
  cm_family *f;
  cm_series *s;
  assert_status(cm_gauge_new(reg, "served_gauge", "A gauge.", NULL, 0, &f), CM_OK);
  assert_status(cm_family_series(f, NULL, 0, &s), CM_OK);
  cm_gauge_set(s, 42);
  cm_server *srv = start_ok(reg, "127.0.0.1:0", NULL);
  char buf[65536];
  http_get(cm_server_port(srv), "/metrics", buf, sizeof buf);
  assert_contains(buf, "HTTP/1.1 200");
  assert_contains(buf, "Content-Type: text/plain; version=0.0.4; charset=utf-8");
  assert_contains(buf, "\nserved_gauge 42\n");
  http_get(cm_server_port(srv), "/nope", buf, sizeof buf);
  assert_contains(buf, "HTTP/1.1 404");
  cm_server_stop(srv);
}

static void listen_forms(void **state) {
  cm_server *a = start_ok(*state, ":0", "");         /* 127.0.0.1 */
  cm_server *b = start_ok(*state, "localhost:0", "threads=2&max_conns=10&timeout_s=5");
  assert_int_not_equal(cm_server_port(a), cm_server_port(b));
  char buf[4096];
  http_get(cm_server_port(a), "/health", buf, sizeof buf);
  assert_contains(buf, "\"status\":\"ok\"");
  cm_server_stop(a);
  cm_server_stop(b);
}

static void port_in_use(void **state) {
  cm_server *a = start_ok(*state, "127.0.0.1:0", NULL);
  char listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", cm_server_port(a));
  cm_server *b = (cm_server *)1;
  assert_status(cm_server_start(&b, *state, listen, NULL), CM_EUNAVAILABLE);
  assert_null(b);
  assert_contains(cm_errmsg(), listen);
  cm_server_stop(a);
  /* Stopped: the port is free again. */
  assert_status(cm_server_start(&b, *state, listen, NULL), CM_OK);
  cm_server_stop(b);
}

static void bad_arguments(void **state) {
  cm_registry *reg = *state;
  cm_server *s = NULL;
  assert_status(cm_server_start(NULL, reg, ":0", NULL), CM_EINVAL);
  assert_contains(cm_errmsg(), "out");
  assert_status(cm_server_start(&s, reg, NULL, NULL), CM_EINVAL);
  assert_contains(cm_errmsg(), "listen");
  const char *bad_listens[] = {"", "9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536",
                               "127.0.0.1:-1", "[::1", "[::1]9464", "::1:9464"};
  for (size_t i = 0; i < CMT_COUNT(bad_listens); ++i) {
    assert_status(cm_server_start(&s, reg, bad_listens[i], NULL), CM_EINVAL);
    assert_null(s);
    assert_contains(cm_errmsg(), "listen");
  }
  assert_status(cm_server_start(&s, reg, ":0", "colour=blue"), CM_EINVAL);
  assert_contains(cm_errmsg(), "colour");
  assert_status(cm_server_start(&s, reg, ":0", "max_conns=0"), CM_EINVAL);
  assert_contains(cm_errmsg(), "max_conns");
  assert_status(cm_server_start(&s, reg, ":0", "timeout_s=forever"), CM_EINVAL);
  assert_contains(cm_errmsg(), "timeout_s");
  assert_status(cm_server_start(&s, reg, ":0", "threads=65"), CM_EINVAL);
  assert_status(cm_server_start(&s, reg, ":0", "token="), CM_EINVAL);
  assert_contains(cm_errmsg(), "token");
  assert_status(cm_server_start(&s, reg, ":0", "basic_auth=nocolon"), CM_EINVAL);
  assert_contains(cm_errmsg(), "basic_auth");
  assert_status(cm_server_start(&s, reg, ":0", "tls_cert=/nonexistent.pem"), CM_EINVAL);
  assert_contains(cm_errmsg(), "tls_key");
  assert_status(cm_server_start(&s, reg, ":0", "tls_cert=/nonexistent.pem&tls_key=/nonexistent.key"), CM_EINVAL);
  assert_contains(cm_errmsg(), "tls_cert");
  assert_null(s);
  assert_int_equal(cm_server_port(NULL), -1);
  cm_server_stop(NULL); /* no-op */
}

/* A NULL registry serves the default one. */
static void default_registry(void **state) {
  (void)state;
  cm_server *s = start_ok(NULL, "127.0.0.1:0", NULL);
  char buf[65536];
  http_get(cm_server_port(s), "/metrics", buf, sizeof buf);
  assert_contains(buf, "HTTP/1.1 200");
  assert_contains(buf, "cachemeter_series_rejected_total");
  cm_server_stop(s);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, cmt_registry_setup, cmt_registry_teardown)
  const struct CMUnitTest tests[] = {
      T(serves_a_registry), T(listen_forms), T(port_in_use), T(bad_arguments), T(default_registry),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
