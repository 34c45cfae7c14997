/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/test_fork.c: every handle keeps working after fork(), in both
 * processes (docs/threading.md, "fork()"). Run through with_redis.sh, which
 * starts a private redis-server and exports CM_TEST_REDIS_PORT.
 *
 * Children report through their exit status (0: every check held) and end
 * with _exit(), like the worker of a pre-fork server that never returns to
 * the parent's code. The parent waits for each with a bound: a child that
 * deadlocked is killed and the test fails. */
#define _GNU_SOURCE /* syscall(SYS_gettid) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmtest.h"

static const char *g_port;
static char g_dir[64];

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* The child's exit status: 0 when it exited 0, else a description. Kills a
 * child that has not exited within bound_s. */
static int wait_child(pid_t pid, int bound_s) {
  for (int i = 0; i < bound_s * 100; ++i) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(st)) return WEXITSTATUS(st);
      fprintf(stderr, "child %d ended by signal %d\n", (int)pid, WIFSIGNALED(st) ? WTERMSIG(st) : -1);
      return 200;
    }
    sleep_ms(10);
  }
  fprintf(stderr, "child %d still running after %d s (deadlocked?): its threads' stacks, then killed\n", (int)pid,
          bound_s);
  if (access("/usr/bin/gdb", X_OK) == 0) {
    /* Where it waits: the evidence a rare hang needs (a lock of ours not
       reset across fork, or one inside libc or a sanitizer runtime). */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "timeout 60 /usr/bin/gdb -batch -nx -p %d -ex 'thread apply all bt 30' 1>&2", (int)pid);
    if (system(cmd) != 0) fprintf(stderr, "(gdb could not attach)\n");
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return 201;
}

static void redis_uri(char *buf, size_t n, const char *ns, const char *extra) {
  snprintf(buf, n, "redis://127.0.0.1:%s?namespace=%s&pool=4&timeout_ms=5000%s", g_port, ns, extra ? extra : "");
}

/* ---- both processes hammer one cache after fork ----------------------------- */

struct hammer {
  cm_cache *c;
  char who;     /* 'p' parent, 'c' child */
  int thread;
  int shared_store; /* other processes see our writes */
  long bad;
};

#define SHARED_KEYS 64
#define ROUNDS 400

static void *hammer_run(void *arg) {
  struct hammer *h = arg;
  char key[64], val[64], want[64];
  for (int i = 0; i < ROUNDS; ++i) {
    /* This process's own key: what we read is what we wrote. */
    snprintf(key, sizeof key, "%c-%d-%d", h->who, h->thread, i % 50);
    snprintf(val, sizeof val, "%c-%d-%d-value-%d", h->who, h->thread, i % 50, i);
    if (cm_cache_set(h->c, key, strlen(key), val, strlen(val), -1) != CM_OK) {
      fprintf(stderr, "%c: set %s: %s\n", h->who, key, cm_errmsg());
      h->bad++;
      continue;
    }
    void *v = NULL;
    size_t n = 0;
    int rc = cm_cache_get(h->c, key, strlen(key), &v, &n);
    if (rc != CM_OK || n != strlen(val) || memcmp(v, val, n) != 0) {
      fprintf(stderr, "%c: get %s: status %d, %.*s instead of %s (%s)\n", h->who, key, rc, (int)(v ? n : 0),
              v ? (const char *)v : "", val, rc < 0 ? cm_errmsg() : "");
      h->bad++;
    }
    cm_free(v);
    /* A key set before fork and never changed since. */
    int s = (i * 7 + h->thread) % SHARED_KEYS;
    snprintf(key, sizeof key, "shared-%d", s);
    snprintf(want, sizeof want, "shared-value-%d", s);
    v = NULL;
    rc = cm_cache_get(h->c, key, strlen(key), &v, &n);
    if (rc != CM_OK || n != strlen(want) || memcmp(v, want, n) != 0) {
      fprintf(stderr, "%c: get %s: status %d, %.*s instead of %s\n", h->who, key, rc, (int)(v ? n : 0),
              v ? (const char *)v : "", want);
      h->bad++;
    }
    cm_free(v);
  }
  return NULL;
}

/* Runs 4 hammer threads; returns the number of bad results. */
static long hammer_all(cm_cache *c, char who) {
  pthread_t t[4];
  struct hammer h[4];
  for (int i = 0; i < 4; ++i) {
    h[i] = (struct hammer){c, who, i, 0, 0};
    pthread_create(&t[i], NULL, hammer_run, &h[i]);
  }
  long bad = 0;
  for (int i = 0; i < 4; ++i) {
    pthread_join(t[i], NULL);
    bad += h[i].bad;
  }
  return bad;
}

static void *warm_up(void *arg) {
  cm_cache *c = arg;
  for (int i = 0; i < 200; ++i) {
    void *v = NULL;
    size_t n = 0;
    char key[32];
    snprintf(key, sizeof key, "shared-%d", i % SHARED_KEYS);
    if (cm_cache_get(c, key, strlen(key), &v, &n) == CM_OK) cm_free(v);
  }
  return NULL;
}

static void fork_and_hammer(cm_cache *c) {
  char key[32], val[32];
  for (int i = 0; i < SHARED_KEYS; ++i) {
    snprintf(key, sizeof key, "shared-%d", i);
    snprintf(val, sizeof val, "shared-value-%d", i);
    assert_status(cm_cache_set(c, key, strlen(key), val, strlen(val), -1), CM_OK);
  }
  /* Used from several threads first, so the pools hold several connections. */
  pthread_t t[4];
  for (int i = 0; i < 4; ++i) pthread_create(&t[i], NULL, warm_up, c);
  for (int i = 0; i < 4; ++i) pthread_join(t[i], NULL);

  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) _exit(hammer_all(c, 'c') == 0 ? 0 : 1);
  long bad = hammer_all(c, 'p');
  int child = wait_child(pid, 60);
  assert_int_equal(bad, 0);
  assert_int_equal(child, 0);
}

static void fork_memory(void **state) {
  cm_cache *c;
  assert_status(cm_cache_open(&c, *state, "fork_mem", "memory://?max_entries=10000"), CM_OK);
  fork_and_hammer(c);
  cm_cache_close(c);
}

static void fork_sqlite(void **state) {
  char uri[160];
  snprintf(uri, sizeof uri, "sqlite://%s/fork.db", g_dir);
  cm_cache *c;
  assert_status(cm_cache_open(&c, *state, "fork_sqlite", uri), CM_OK);
  fork_and_hammer(c);
  cm_cache_close(c);
}

static void fork_redis(void **state) {
  char uri[200];
  redis_uri(uri, sizeof uri, "fork_redis", NULL);
  cm_cache *c;
  assert_status(cm_cache_open(&c, *state, "fork_redis", uri), CM_OK);
  assert_status(cm_cache_clear(c), CM_OK);
  fork_and_hammer(c);
  cm_cache_close(c);
}

static void fork_tiered(void **state) {
  char uri[200];
  redis_uri(uri, sizeof uri, "fork_tiered", NULL);
  cm_cache *c;
  assert_status(cm_cache_open_tiered(&c, *state, "fork_tiered", "memory://?max_entries=10000", uri), CM_OK);
  assert_status(cm_cache_clear(c), CM_OK);
  fork_and_hammer(c);
  cm_cache_close(c);
}

/* ---- a tiered cache's L1 stays coherent in the child --------------------------- */

/* The child's L1 held v1 from before fork; another handle changes the key in
 * Redis after fork: the child must see the change (its own invalidation
 * listener), not the parent's copy of L1 forever. */
static void tiered_child_listens(void **state) {
  char uri[200];
  redis_uri(uri, sizeof uri, "fork_listen", NULL);
  cm_cache *t, *plain;
  /* L1 keeps entries for an hour: only an invalidation can drop them. */
  assert_status(cm_cache_open_tiered(&t, *state, "fork_listen", "memory://?ttl_ms=3600000", uri), CM_OK);
  assert_status(cm_cache_open(&plain, *state, "fork_listen_plain", uri), CM_OK);
  assert_status(cm_cache_set(t, "k", 1, "v1", 2, -1), CM_OK);
  /* Reads until one is answered by L1 (the listener connected and a read
   * filled L1), seen in the tier metric. */
  int from_l1 = 0;
  for (int i = 0; i < 2000 && !from_l1; ++i) {
    void *v = NULL;
    size_t n = 0;
    assert_status(cm_cache_get(t, "k", 1, &v, &n), CM_OK);
    cm_free(v);
    char *text = cmt_render(*state, CM_FORMAT_PROMETHEUS);
    from_l1 = cmt_sample(text, "cachemeter_cache_tier_hits_total{cache=\"fork_listen\",backend=\"memory\",tier=\"l1\"}") > 0;
    cm_free(text);
    if (!from_l1) sleep_ms(5);
  }
  assert_true(from_l1);

  int go[2], done[2];
  assert_int_equal(pipe(go), 0);
  assert_int_equal(pipe(done), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char b;
    if (read(go[0], &b, 1) != 1) _exit(2);
    /* The parent changed k to v2 through the plain handle. */
    for (int i = 0; i < 1000; ++i) {
      void *v = NULL;
      size_t n = 0;
      int rc = cm_cache_get(t, "k", 1, &v, &n);
      int seen_v2 = rc == CM_OK && n == 2 && memcmp(v, "v2", 2) == 0;
      cm_free(v);
      if (seen_v2) _exit(0);
      sleep_ms(10);
    }
    fprintf(stderr, "child: still reads v1 from its L1 after 10 s\n");
    _exit(1);
  }
  assert_status(cm_cache_set(plain, "k", 1, "v2", 2, -1), CM_OK);
  assert_int_equal(write(go[1], "x", 1), 1);
  assert_int_equal(wait_child(pid, 60), 0);
  close(go[0]);
  close(go[1]);
  close(done[0]);
  close(done[1]);
  cm_cache_close(plain);
  cm_cache_close(t);
}

/* ---- a load in flight at fork belongs to the parent ---------------------------- */

static int g_release[2], g_entered[2];

static int slow_loader(void *ctx, const void *key, size_t klen, void **val, size_t *vlen) {
  (void)ctx;
  (void)key;
  (void)klen;
  char b = 'x';
  if (write(g_entered[1], &b, 1) != 1 || read(g_release[0], &b, 1) != 1) return CM_EBACKEND;
  *val = cm_alloc(6);
  memcpy(*val, "parent", 6);
  *vlen = 6;
  return CM_OK;
}

static int quick_loader(void *ctx, const void *key, size_t klen, void **val, size_t *vlen) {
  (void)ctx;
  (void)key;
  (void)klen;
  *val = cm_alloc(5);
  memcpy(*val, "child", 5);
  *vlen = 5;
  return CM_OK;
}

static void *load_in_parent(void *arg) {
  cm_cache *c = arg;
  void *v = NULL;
  size_t n = 0;
  int rc = cm_cache_get_or_load(c, "k", 1, slow_loader, NULL, 0, &v, &n);
  cm_free(v);
  return (void *)(intptr_t)rc;
}

static void load_in_flight_at_fork(void **state) {
  cm_cache *c;
  /* Waiters would wait up to a minute for a load nobody runs. */
  assert_status(cm_cache_open(&c, *state, "fork_load", "memory://?load_timeout_ms=60000"), CM_OK);
  assert_int_equal(pipe(g_release), 0);
  assert_int_equal(pipe(g_entered), 0);
  pthread_t t;
  pthread_create(&t, NULL, load_in_parent, c);
  char b;
  assert_int_equal(read(g_entered[0], &b, 1), 1); /* the loader runs: the load is in flight */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    void *v = NULL;
    size_t n = 0;
    int rc = cm_cache_get_or_load(c, "k", 1, quick_loader, NULL, 0, &v, &n);
    int ok = rc == CM_OK && n == 5 && memcmp(v, "child", 5) == 0;
    if (!ok) fprintf(stderr, "child: get_or_load returned %d (%s)\n", rc, rc < 0 ? cm_errmsg() : "");
    cm_free(v);
    _exit(ok ? 0 : 1);
  }
  int child = wait_child(pid, 30);
  assert_int_equal(write(g_release[1], "x", 1), 1);
  void *rc;
  pthread_join(t, &rc);
  assert_int_equal((intptr_t)rc, CM_OK);
  assert_int_equal(child, 0);
  close(g_release[0]);
  close(g_release[1]);
  close(g_entered[0]);
  close(g_entered[1]);
  cm_cache_close(c);
}

/* ---- persistence stays with the parent ------------------------------------------ */

static void persistence_stays_with_parent(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/metrics.db", g_dir);
  cm_registry *reg;
  assert_status(cm_registry_new(&reg, ""), CM_OK);
  cm_family *f;
  assert_status(cm_counter_new(reg, "jobs", "Jobs.", NULL, 0, &f), CM_OK);
  cm_series *s;
  assert_status(cm_family_series(f, NULL, 0, &s), CM_OK);
  assert_status(cm_registry_persist(reg, path, 5), CM_OK);
  cm_counter_add(s, 1);
  /* Fork once the flusher thread has written the file on its own: it runs,
   * and between flushes it waits on a condition variable, whose copy the
   * child must be able to destroy (the waiter is not in the child). */
  for (int tries = 0;; tries++) {
    cm_registry *peek;
    assert_status(cm_registry_new(&peek, ""), CM_OK);
    double v = -1;
    if (cm_registry_load(peek, path) == CM_OK) v = cmt_render_sample(peek, "jobs_total");
    cm_registry_free(peek);
    if (v == 1) break;
    assert_true(tries < 2000); /* 10 s */
    sleep_ms(5);
  }
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    cm_counter_add(s, 100);
    int rc = cm_registry_flush(reg);
    if (rc != CM_ESTATE) {
      fprintf(stderr, "child: flush returned %d, expected CM_ESTATE\n", rc);
      _exit(1);
    }
    /* Must neither wait for the parent's flusher thread nor write the file. */
    cm_registry_free(reg);
    _exit(0);
  }
  assert_int_equal(wait_child(pid, 30), 0);
  cm_counter_add(s, 1);
  assert_status(cm_registry_flush(reg), CM_OK);
  cm_registry_free(reg);
  /* The file holds the parent's 2, not the child's 101. */
  cm_registry *back;
  assert_status(cm_registry_new(&back, ""), CM_OK);
  assert_status(cm_registry_load(back, path), CM_OK);
  char *text = cmt_render(back, CM_FORMAT_PROMETHEUS);
  assert_double_exact(cmt_sample(text, "jobs_total"), 2);
  cm_free(text);
  cm_registry_free(back);
}

/* True when GET /metrics on 127.0.0.1:port answers 200 within a few seconds. */
static int http_get_ok(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = 0;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
    char reply[64] = {0};
    if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) && read(fd, reply, sizeof reply - 1) > 12)
      ok = strncmp(reply, "HTTP/1.0 200", 12) == 0 || strncmp(reply, "HTTP/1.1 200", 12) == 0;
  }
  close(fd);
  return ok;
}

/* ---- the HTTP server is not inherited ------------------------------------------ */

/* A child may close caches and call cm_server_stop on the parent's server:
 * both return (nothing of the parent's threads is waited for), and the
 * parent's server keeps serving. */
static void server_not_inherited(void **state) {
  cm_server *srv;
  assert_status(cm_server_start(&srv, *state, "127.0.0.1:0", "health_interval_ms=0"), CM_OK);
  char uri[200];
  redis_uri(uri, sizeof uri, "fork_server", NULL);
  cm_cache *c;
  assert_status(cm_cache_open(&c, *state, "fork_server", uri), CM_OK);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    cm_cache_close(c);
    cm_server_stop(srv);
    _exit(0);
  }
  assert_int_equal(wait_child(pid, 30), 0);
  /* The parent's endpoint still answers (a child stopping it for real would
   * shut the shared listening socket down and wake the parent's threads). */
  assert_true(http_get_ok(cm_server_port(srv)));
  cm_cache_close(c);
  cm_server_stop(srv);
}

/* ---- a thread of the parent waiting for a pooled connection ---------------------- */

struct pool_user {
  cm_cache *c;
  volatile pid_t tid;
  int rc;
};

static void *pool_get(void *arg) {
  struct pool_user *u = arg;
  u->tid = (pid_t)syscall(SYS_gettid);
  void *v = NULL;
  size_t n = 0;
  u->rc = cm_cache_get(u->c, "k", 1, &v, &n);
  cm_free(v);
  return NULL;
}

/* Where thread tid sleeps in the kernel ("0" when running). */
static void wchan_of(pid_t tid, char *buf, size_t n) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/wchan", (int)tid);
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (!fgets(buf, (int)n, f)) buf[0] = '\0';
  fclose(f);
}

/* "CLIENT PAUSE ms" on a connection of its own: the server holds every
 * client's commands (ours included) for ms. */
static void redis_pause(int ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(g_port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char cmd[64], reply[64] = {0};
  int len = snprintf(cmd, sizeof cmd, "CLIENT PAUSE %d\r\n", ms);
  assert_int_equal(write(fd, cmd, (size_t)len), len);
  assert_true(read(fd, reply, sizeof reply - 1) > 0);
  assert_string_equal(reply, "+OK\r\n");
  close(fd);
}

static void pool_waiter_at_fork(void **state) {
  char uri[200];
  snprintf(uri, sizeof uri, "redis://127.0.0.1:%s?namespace=pool_waiter&pool=1&timeout_ms=10000", g_port);
  cm_cache *c;
  assert_status(cm_cache_open(&c, *state, "pool_waiter", uri), CM_OK);
  assert_status(cm_cache_set(c, "k", 1, "v", 1, 0), CM_OK); /* the pool's one connection */
  redis_pause(1500);
  /* One thread gets the connection and waits for its reply; the other waits
   * on the pool's condition variable for it. */
  struct pool_user u[2] = {{c, 0, 0}, {c, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; ++i) assert_int_equal(pthread_create(&th[i], NULL, pool_get, &u[i]), 0);
  int waiting = 0;
  for (int tries = 0; !waiting; ++tries) {
    assert_true(tries < 1000); /* 5 s (the pause lasts 1.5) */
    sleep_ms(5);
    char w0[64], w1[64];
    if (!u[0].tid || !u[1].tid) continue;
    wchan_of(u[0].tid, w0, sizeof w0);
    wchan_of(u[1].tid, w1, sizeof w1);
    int f0 = strstr(w0, "futex") != NULL, f1 = strstr(w1, "futex") != NULL;
    int s0 = w0[0] && strcmp(w0, "0") != 0, s1 = w1[0] && strcmp(w1, "0") != 0;
    waiting = s0 && s1 && f0 != f1; /* one in the socket read, one on the condition variable */
  }
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* The child's copy of the condition variable records the parent's
     * waiter, which the child does not have. */
    void *v = NULL;
    size_t n = 0;
    int ok = cm_cache_set(c, "c", 1, "w", 1, 0) == CM_OK && cm_cache_get(c, "c", 1, &v, &n) == CM_OK && n == 1 &&
             memcmp(v, "w", 1) == 0;
    cm_free(v);
    cm_cache_close(c); /* must not wait for that waiter */
    _exit(ok ? 0 : 1);
  }
  int child = wait_child(pid, 30);
  for (int i = 0; i < 2; ++i) pthread_join(th[i], NULL);
  assert_int_equal(child, 0);
  assert_status(u[0].rc, CM_OK);
  assert_status(u[1].rc, CM_OK);
  cm_cache_close(c);
}

/* ---- fork while other threads work ---------------------------------------------- */

struct busy {
  cm_registry *reg;
  cm_cache *mem, *sql, *red;
  cm_family *fam;
  cm_series *counter, *hist;
  volatile int stop;
};

static void *busy_run(void *arg) {
  struct busy *b = arg;
  unsigned i = 0;
  char key[32], label[32];
  while (!b->stop) {
    ++i;
    cm_counter_add(b->counter, 1);
    cm_histogram_observe(b->hist, (double)(i % 100) / 1000.0);
    snprintf(key, sizeof key, "k%u", i % 500);
    cm_cache_set(b->mem, key, strlen(key), "v", 1, -1);
    void *v = NULL;
    size_t n = 0;
    if (cm_cache_get(b->mem, key, strlen(key), &v, &n) == CM_OK) cm_free(v);
    if (i % 8 == 0) {
      cm_cache_set(b->sql, key, strlen(key), "v", 1, -1);
      if (cm_cache_get(b->sql, key, strlen(key), &v, &n) == CM_OK) cm_free(v);
      if (cm_cache_get(b->red, key, strlen(key), &v, &n) == CM_OK) cm_free(v);
    }
    if (i % 16 == 0) {
      char *text;
      size_t len;
      if (cm_registry_render(b->reg, CM_FORMAT_PROMETHEUS, &text, &len) == CM_OK) cm_free(text);
      snprintf(label, sizeof label, "l%u", i % 200);
      const char *vals[] = {label};
      cm_series *s;
      cm_family_series(b->fam, vals, 1, &s);
    }
  }
  return NULL;
}

/* What a child does first: everything that takes a lock. */
static int child_work(struct busy *b) {
  char *text;
  size_t len;
  if (cm_registry_render(b->reg, CM_FORMAT_JSON, &text, &len) != CM_OK) return 1;
  cm_free(text);
  const char *vals[] = {"child"};
  cm_series *s;
  if (cm_family_series(b->fam, vals, 1, &s) != CM_OK) return 2;
  cm_counter_add(s, 1);
  cm_cache *caches[] = {b->mem, b->sql, b->red};
  for (int i = 0; i < 3; ++i) {
    if (cm_cache_set(caches[i], "child-key", 9, "cv", 2, -1) != CM_OK) return 10 + i;
    void *v = NULL;
    size_t n = 0;
    int rc = cm_cache_get(caches[i], "child-key", 9, &v, &n);
    int ok = rc == CM_OK && n == 2 && memcmp(v, "cv", 2) == 0;
    cm_free(v);
    if (!ok) return 20 + i;
    if (cm_cache_stats_json(caches[i], &text) != CM_OK) return 30 + i;
    cm_free(text);
  }
  cm_cache *fresh;
  if (cm_cache_open(&fresh, b->reg, "child_cache", "memory://") != CM_OK) return 40;
  cm_cache_close(fresh);
  return 0;
}

static void fork_while_threads_work(void **state) {
  struct busy b = {0};
  b.reg = *state;
  char uri[200];
  assert_status(cm_cache_open(&b.mem, b.reg, "busy_mem", "memory://?max_entries=1000"), CM_OK);
  snprintf(uri, sizeof uri, "sqlite://%s/busy.db", g_dir);
  assert_status(cm_cache_open(&b.sql, b.reg, "busy_sqlite", uri), CM_OK);
  redis_uri(uri, sizeof uri, "busy", NULL);
  assert_status(cm_cache_open(&b.red, b.reg, "busy_redis", uri), CM_OK);
  const char *labels[] = {"l"};
  assert_status(cm_counter_new(b.reg, "busy_labelled", "x", labels, 1, &b.fam), CM_OK);
  cm_family *cf, *hf;
  assert_status(cm_counter_new(b.reg, "busy_ops", "x", NULL, 0, &cf), CM_OK);
  assert_status(cm_family_series(cf, NULL, 0, &b.counter), CM_OK);
  assert_status(cm_histogram_new(b.reg, "busy_seconds", "x", NULL, 0, NULL, 0, &hf), CM_OK);
  assert_status(cm_family_series(hf, NULL, 0, &b.hist), CM_OK);
  pthread_t t[3];
  for (int i = 0; i < 3; ++i) pthread_create(&t[i], NULL, busy_run, &b);
  int failures = 0;
  for (int round = 0; round < 40; ++round) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(child_work(&b));
    int st = wait_child(pid, 30);
    if (st != 0) {
      fprintf(stderr, "fork round %d: child status %d\n", round, st);
      ++failures;
    }
    sleep_ms(3);
  }
  b.stop = 1;
  for (int i = 0; i < 3; ++i) pthread_join(t[i], NULL);
  assert_int_equal(failures, 0);
  cm_cache_close(b.mem);
  cm_cache_close(b.sql);
  cm_cache_close(b.red);
}

static void remove_files(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

int main(void) {
  g_port = getenv("CM_TEST_REDIS_PORT");
  if (!g_port || !*g_port || strspn(g_port, "0123456789") != strlen(g_port)) {
    fprintf(stderr, "test_fork needs CM_TEST_REDIS_PORT (tests/c/with_redis.sh starts a redis-server)\n");
    return 1;
  }
  strcpy(g_dir, "/tmp/cm-test-fork-XXXXXX");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  atexit(remove_files);
#define T(fn) cmocka_unit_test_setup_teardown(fn, cmt_registry_setup, cmt_registry_teardown)
  const struct CMUnitTest tests[] = {
      T(fork_memory),
      T(fork_sqlite),
      T(fork_redis),
      T(fork_tiered),
      T(tiered_child_listens),
      T(load_in_flight_at_fork),
      T(persistence_stays_with_parent),
      T(server_not_inherited),
      T(pool_waiter_at_fork),
      T(fork_while_threads_work),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
