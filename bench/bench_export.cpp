// SPDX-License-Identifier: Apache-2.0
// Exporters (issue 16), every ratio from one run of this binary:
// - counter_add and a memory-cache get hit with three exporters running
//   (StatsD with DogStatsD tags, StatsD with tags folded, a callback; 100 ms
//   intervals, ten times the default) vs none: the hot path must not notice;
// - one StatsD flush of 10k changed series: time and CPU per flush, and
//   datagrams per flush (counted by a real receiving socket);
// - the cost per cache operation of getting it to StatsD: an aggregating
//   exporter vs a client that sends one datagram per operation (a plain
//   sendto of "name:1|c" after each get, as per-op StatsD clients do).
#include "bench_util.h"

#include <cachemeter/cachemeter.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using cmbench::check;

// A UDP socket on 127.0.0.1 that takes the datagrams (drained on demand).
struct Receiver {
  int fd = -1;
  int port = 0;
  Receiver() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int big = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) std::abort();
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Receiver() { ::close(fd); }
  // Datagrams queued now (and their bytes).
  size_t drain(size_t *bytes = nullptr) {
    static char buf[70000];
    size_t n = 0;
    for (;;) {
      ssize_t got = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got < 0) break;
      ++n;
      if (bytes) *bytes += static_cast<size_t>(got);
    }
    return n;
  }
};

int ignore_samples(void *, const cm_sample *, size_t) { return 0; }

// A registry with 0 or 3 running exporters.
struct Setup {
  Receiver rx;
  cm_registry *reg = nullptr;
  std::vector<cm_exporter *> exporters;
  Setup(bool with_exporters, int interval_ms = 100) {
    check(cm_registry_new(&reg, "const_labels=app:bench"), "cm_registry_new");
    if (!with_exporters) return;
    std::string base = "statsd://127.0.0.1:" + std::to_string(rx.port) + "?interval_ms=" + std::to_string(interval_ms);
    cm_exporter *e = nullptr;
    check(cm_exporter_start(&e, reg, base.c_str()), "statsd exporter");
    exporters.push_back(e);
    check(cm_exporter_start(&e, reg, (base + "&tags=none&name=folded").c_str()), "statsd exporter 2");
    exporters.push_back(e);
    check(cm_exporter_start_callback(&e, reg, ignore_samples, nullptr,
                                     ("interval_ms=" + std::to_string(interval_ms)).c_str()),
          "callback exporter");
    exporters.push_back(e);
  }
  ~Setup() {
    for (cm_exporter *e : exporters) cm_exporter_stop(e);
    cm_registry_free(reg);
  }
};

void counter_add(benchmark::State &st, bool with_exporters) {
  static Setup *s = nullptr;
  static cm_series *c = nullptr;
  if (st.thread_index() == 0) {
    s = new Setup(with_exporters);
    cm_family *f = nullptr;
    check(cm_counter_new(s->reg, "jobs", "Jobs.", nullptr, 0, &f), "cm_counter_new");
    check(cm_family_series(f, nullptr, 0, &c), "cm_family_series");
  }
  for (auto _ : st) cm_counter_add(c, 1);
  if (st.thread_index() == 0) {
    delete s;
    s = nullptr;
  }
}

constexpr int kHotKeys = 1024;

std::string key_of(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key:%012d", i);
  return buf;
}

// A cache over uri holding the kHotKeys keys (100 B values), in *keys.
cm_cache *hot_cache(cm_registry *reg, const char *uri, std::vector<std::string> *keys) {
  cm_cache *c = nullptr;
  check(cm_cache_open(&c, reg, "users", uri), "cm_cache_open");
  std::string value(100, 'v');
  for (int i = 0; i < kHotKeys; ++i) {
    keys->push_back(key_of((i * 7919) % kHotKeys));
    check(cm_cache_set(c, keys->back().data(), keys->back().size(), value.data(), value.size(), 0), "set");
  }
  return c;
}

void get_hit(benchmark::State &st, bool with_exporters) {
  Setup s(with_exporters);
  std::vector<std::string> keys;
  cm_cache *c = hot_cache(s.reg, "memory://?max_entries=100000", &keys);
  char buf[128];
  size_t i = 0, len = 0;
  for (auto _ : st) {
    const std::string &k = keys[i++ & (kHotKeys - 1)];
    int rc = cm_cache_get_into(c, k.data(), k.size(), buf, sizeof buf, &len);
    benchmark::DoNotOptimize(rc);
  }
  cm_cache_close(c);
}

// The per-operation client: metrics=off, and one datagram per get, as a
// StatsD client without aggregation sends (python-statsd, most Node clients).
void get_hit_sendto_per_op(benchmark::State &st) {
  Setup s(false);
  std::vector<std::string> keys;
  cm_cache *c = hot_cache(s.reg, "memory://?max_entries=100000&metrics=off", &keys);
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(static_cast<uint16_t>(s.rx.port));
  static const char line[] = "myapp.cache_hits_total:1|c|#cache:users,backend:memory";
  char buf[128];
  size_t i = 0, len = 0, n = 0;
  for (auto _ : st) {
    const std::string &k = keys[i++ & (kHotKeys - 1)];
    int rc = cm_cache_get_into(c, k.data(), k.size(), buf, sizeof buf, &len);
    benchmark::DoNotOptimize(rc);
    ::sendto(fd, line, sizeof line - 1, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
    if ((++n & 4095) == 0) s.rx.drain();  // keep the receiver's buffer from filling
  }
  ::close(fd);
  cm_cache_close(c);
}

// One flush of 10k series that all changed since the last one.
void statsd_flush_10k(benchmark::State &st) {
  Receiver rx;
  cm_registry *reg = nullptr;
  check(cm_registry_new(&reg, "max_series=20000"), "cm_registry_new");
  const char *labels[] = {"cache", "op"};
  cm_family *f = nullptr;
  check(cm_counter_new(reg, "cache_ops", "Ops.", labels, 2, &f), "cm_counter_new");
  std::vector<cm_series *> series;
  for (int i = 0; i < 10000; ++i) {
    std::string cache = "cache" + std::to_string(i / 4);
    const char *ops[] = {"get", "set", "delete", "load"};
    const char *v[] = {cache.c_str(), ops[i % 4]};
    cm_series *s = nullptr;
    check(cm_family_series(f, v, 2, &s), "cm_family_series");
    series.push_back(s);
  }
  cm_exporter *e = nullptr;
  std::string uri = "statsd://127.0.0.1:" + std::to_string(rx.port) + "?interval_ms=0";
  check(cm_exporter_start(&e, reg, uri.c_str()), "cm_exporter_start");
  size_t datagrams = 0, bytes = 0;
  for (auto _ : st) {
    st.PauseTiming();
    for (cm_series *s : series) cm_counter_add(s, 1);
    st.ResumeTiming();
    check(cm_exporter_flush(e), "cm_exporter_flush");
    st.PauseTiming();
    datagrams += rx.drain(&bytes);
    st.ResumeTiming();
  }
  st.counters["datagrams_per_flush"] = benchmark::Counter(static_cast<double>(datagrams) / static_cast<double>(st.iterations()));
  st.counters["bytes_per_flush"] = benchmark::Counter(static_cast<double>(bytes) / static_cast<double>(st.iterations()));
  cm_exporter_stop(e);
  cm_registry_free(reg);
}

void register_all() {
  for (int threads : {1, 2}) {
    benchmark::RegisterBenchmark("counter_add/exporters:0", counter_add, false)->Threads(threads)->UseRealTime();
    benchmark::RegisterBenchmark("counter_add/exporters:3", counter_add, true)->Threads(threads)->UseRealTime();
  }
  benchmark::RegisterBenchmark("get_hit_hot1k/exporters:0", get_hit, false);
  benchmark::RegisterBenchmark("get_hit_hot1k/exporters:3", get_hit, true);
  benchmark::RegisterBenchmark("get_hit_hot1k/metrics_off_sendto_per_op", get_hit_sendto_per_op);
  benchmark::RegisterBenchmark("statsd_flush/10k_changed_series", statsd_flush_10k)->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char **argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
