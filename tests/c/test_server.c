/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/test_server.c: cm_server_start / cm_server_port / cm_server_stop
 * through the shared library: every status, bad listen addresses and
 * options, a port already in use, and one real request over a socket (the
 * endpoints themselves are tested in tests/http). */
#include "cmtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* The new limits' options are checked like the others. */
static void bad_limit_options(void **state) {
  cm_server *s = NULL;
  const char *bad[][2] = {{"max_conns_per_ip=-1", "max_conns_per_ip"},
                          {"max_conns_per_ip=lots", "max_conns_per_ip"},
                          {"request_timeout_ms=0", "request_timeout_ms"},
                          {"request_timeout_ms=3600001", "request_timeout_ms"},
                          {"health_interval_ms=-5", "health_interval_ms"},
                          {"health_interval_ms=soon", "health_interval_ms"}};
  for (size_t i = 0; i < CMT_COUNT(bad); ++i) {
    assert_status(cm_server_start(&s, *state, ":0", bad[i][0]), CM_EINVAL);
    assert_null(s);
    assert_contains(cm_errmsg(), bad[i][1]);
  }
  s = start_ok(*state, "127.0.0.1:0", "max_conns_per_ip=0&request_timeout_ms=10&health_interval_ms=0");
  cm_server_stop(s);
}

/* Expects a start with these TLS files to fail with CM_EINVAL, before
 * reading anything it should not: the message names the option and path. */
static void refused_tls(cm_registry *reg, const char *cert, const char *key, const char *option, const char *path,
                        const char *why) {
  char opts[1024];
  snprintf(opts, sizeof opts, "tls_cert=%s&tls_key=%s", cert, key);
  cm_server *s = (cm_server *)1;
  assert_status(cm_server_start(&s, reg, "127.0.0.1:0", opts), CM_EINVAL);
  assert_null(s);
  assert_contains(cm_errmsg(), option);
  assert_contains(cm_errmsg(), path);
  assert_contains(cm_errmsg(), why);
}

/* tls_cert= and tls_key= accept non-empty regular files of at most 1 MiB
 * only: /dev/zero used to be read until memory ran out, a FIFO without a
 * writer blocked cm_server_start forever, and a directory or an empty file
 * started a plain-HTTP server. */
static void tls_files_must_be_regular(void **state) {
  cm_registry *reg = *state;
  char dir[] = "/tmp/cm_tls_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char small[256], fifo[256], sub[256], big[256];
  snprintf(small, sizeof small, "%s/small.pem", dir);
  snprintf(fifo, sizeof fifo, "%s/fifo.pem", dir);
  snprintf(sub, sizeof sub, "%s/dir.pem", dir);
  snprintf(big, sizeof big, "%s/big.pem", dir);
  FILE *f = fopen(small, "w");
  assert_non_null(f);
  fputs("not a certificate\n", f);
  fclose(f);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_int_equal(mkdir(sub, 0700), 0);
  f = fopen(big, "w");
  assert_non_null(f);
  assert_int_equal(ftruncate(fileno(f), (1 << 20) + 1), 0); /* sparse: costs no disk */
  fclose(f);

  refused_tls(reg, "/dev/zero", small, "tls_cert", "/dev/zero", "not a regular file");
  refused_tls(reg, small, "/dev/zero", "tls_key", "/dev/zero", "not a regular file");
  refused_tls(reg, fifo, small, "tls_cert", fifo, "not a regular file");
  refused_tls(reg, small, fifo, "tls_key", fifo, "not a regular file");
  refused_tls(reg, sub, small, "tls_cert", sub, "not a regular file");
  refused_tls(reg, big, small, "tls_cert", big, "larger than 1048576 bytes");
  refused_tls(reg, small, big, "tls_key", big, "larger than 1048576 bytes");
  refused_tls(reg, "/nonexistent.pem", small, "tls_cert", "/nonexistent.pem", "cannot open");
  /* Empty (as a directory read used to be): it served plain HTTP. */
  char empty[256];
  snprintf(empty, sizeof empty, "%s/empty.pem", dir);
  f = fopen(empty, "w");
  assert_non_null(f);
  fclose(f);
  refused_tls(reg, empty, small, "tls_cert", empty, "empty");
  refused_tls(reg, small, empty, "tls_key", empty, "empty");
  unlink(empty);

  unlink(small);
  unlink(fifo);
  rmdir(sub);
  unlink(big);
  rmdir(dir);
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
      T(bad_limit_options), T(tls_files_must_be_regular),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
