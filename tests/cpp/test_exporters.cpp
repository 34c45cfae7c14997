// SPDX-License-Identifier: Apache-2.0
// Exporters (include/cachemeter/export.h): the callback exporter under
// concurrent writers (TSan), failures keeping deltas pending, the lifetime
// rules, the URI errors, and the StatsD exporter against real sockets (UDP
// and Unix datagram) read back by a strict parser written here.
#include <gtest/gtest.h>

#include <cachemeter/cachemeter.h>

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

struct RegistryFree {
  void operator()(cm_registry* r) const { cm_registry_free(r); }
};
using RegPtr = std::unique_ptr<cm_registry, RegistryFree>;

RegPtr new_registry(const char* options = "") {
  cm_registry* r = nullptr;
  EXPECT_EQ(cm_registry_new(&r, options), CM_OK) << cm_errmsg();
  return RegPtr(r);
}

// "name{a=x,b=y}" for a sample: the key of the totals below.
std::string key_of(const cm_sample& s) {
  std::string k = s.name;
  k += '{';
  for (size_t i = 0; i < s.nlabels; ++i) {
    if (i) k += ',';
    k += std::string(s.label_names[i]) + "=" + s.label_values[i];
  }
  return k + '}';
}

// What a callback exporter was given, summed over its calls.
struct Totals {
  std::mutex mu;
  std::map<std::string, double> value;  // counters: summed deltas; gauges: last; histograms: summed sum
  std::map<std::string, uint64_t> count;
  std::map<std::string, std::vector<uint64_t>> buckets;
  int calls = 0;
  int fail_calls = 0;  // the next this many calls return non-zero
  size_t last_n = 0;
};

int record(void* ctx, const cm_sample* samples, size_t n) {
  auto* t = static_cast<Totals*>(ctx);
  std::lock_guard<std::mutex> g(t->mu);
  ++t->calls;
  if (t->fail_calls > 0) {
    --t->fail_calls;
    return 7;
  }
  t->last_n = n;
  for (size_t i = 0; i < n; ++i) {
    const cm_sample& s = samples[i];
    std::string k = key_of(s);
    if (s.type == CM_SAMPLE_GAUGE) {
      t->value[k] = s.value;
      continue;
    }
    t->value[k] += s.value;
    if (s.type == CM_SAMPLE_HISTOGRAM) {
      t->count[k] += s.count;
      auto& b = t->buckets[k];
      b.resize(s.nbounds + 1);
      for (size_t j = 0; j <= s.nbounds; ++j) b[j] += s.bucket_counts[j];
    }
  }
  return 0;
}

TEST(CallbackExporter, DeltasSummedOverFlushesEqualTheFinalValuesUnderFourWriters) {
  RegPtr reg = new_registry("const_labels=env:test");
  const char* labels[] = {"worker"};
  cm_family *ctr = nullptr, *hist = nullptr, *gauge = nullptr;
  ASSERT_EQ(cm_counter_new(reg.get(), "jobs", "Jobs.", labels, 1, &ctr), CM_OK);
  const double bounds[] = {0.5, 1, 5};
  ASSERT_EQ(cm_histogram_new(reg.get(), "size", "Sizes.", labels, 1, bounds, 3, &hist), CM_OK);
  ASSERT_EQ(cm_gauge_new(reg.get(), "level", "Level.", nullptr, 0, &gauge), CM_OK);
  cm_series* level = nullptr;
  ASSERT_EQ(cm_family_series(gauge, nullptr, 0, &level), CM_OK);

  Totals t;
  cm_exporter* e = nullptr;
  // Interval flushes every 1 ms run on the flush thread while the writers
  // write and the test thread flushes too.
  ASSERT_EQ(cm_exporter_start_callback(&e, reg.get(), record, &t, "interval_ms=1&deltas=1"), CM_OK) << cm_errmsg();

  constexpr int kThreads = 4, kOps = 20000;
  std::atomic<bool> go{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kThreads; ++w) {
    writers.emplace_back([&, w] {
      std::string v = "w" + std::to_string(w % 2);  // two threads per series
      const char* vals[] = {v.c_str()};
      cm_series *c = nullptr, *h = nullptr;
      EXPECT_EQ(cm_family_series(ctr, vals, 1, &c), CM_OK);
      EXPECT_EQ(cm_family_series(hist, vals, 1, &h), CM_OK);
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kOps; ++i) {
        cm_counter_add(c, (i % 3 == 0) ? 0.5 : 1);
        cm_histogram_observe(h, static_cast<double>(i % 7));
        cm_gauge_set(level, w);
      }
    });
  }
  go = true;
  for (int i = 0; i < 50; ++i) EXPECT_EQ(cm_exporter_flush(e), CM_OK) << cm_errmsg();
  for (auto& th : writers) th.join();
  cm_gauge_set(level, 42);
  cm_exporter_stop(e);  // the final flush

  std::lock_guard<std::mutex> g(t.mu);
  EXPECT_GT(t.calls, 1);
  for (const char* w : {"w0", "w1"}) {
    const char* vals[] = {w};
    cm_series *c = nullptr, *h = nullptr;
    ASSERT_EQ(cm_family_series(ctr, vals, 1, &c), CM_OK);
    ASSERT_EQ(cm_family_series(hist, vals, 1, &h), CM_OK);
    std::string ck = std::string("jobs_total{env=test,worker=") + w + "}";
    std::string hk = std::string("size{env=test,worker=") + w + "}";
    EXPECT_EQ(t.value[ck], cm_series_value(c)) << ck;
    const int halves = (kOps + 2) / 3;  // the i % 3 == 0 adds of 0.5
    EXPECT_EQ(t.value[ck], 2 * (halves * 0.5 + (kOps - halves)));
    EXPECT_EQ(t.count[hk], 2u * kOps);
    double sum = 0;
    for (int i = 0; i < kOps; ++i) sum += i % 7;
    EXPECT_EQ(t.value[hk], 2 * sum);
    // Buckets: values 0..6 in bounds 0.5, 1, 5, +Inf.
    std::vector<uint64_t> want(4, 0);
    for (int i = 0; i < kOps; ++i) {
      int v = i % 7;
      want[v <= 0.5 ? 0 : v <= 1 ? 1 : v <= 5 ? 2 : 3] += 2;
    }
    EXPECT_EQ(t.buckets[hk], want);
  }
  EXPECT_EQ(t.value["level{env=test}"], 42);
}

TEST(CallbackExporter, ARefusedCallKeepsItsSamplesPendingAndIsCounted) {
  RegPtr reg = new_registry();
  cm_family* f = nullptr;
  ASSERT_EQ(cm_counter_new(reg.get(), "hits", "Hits.", nullptr, 0, &f), CM_OK);
  cm_series* s = nullptr;
  ASSERT_EQ(cm_family_series(f, nullptr, 0, &s), CM_OK);
  Totals t;
  cm_exporter* e = nullptr;
  ASSERT_EQ(cm_exporter_start_callback(&e, reg.get(), record, &t, "interval_ms=0&name=cb"), CM_OK);
  cm_counter_add(s, 3);
  t.fail_calls = 1;
  EXPECT_EQ(cm_exporter_flush(e), CM_EBACKEND);
  EXPECT_NE(std::string(cm_errmsg()).find("returned 7"), std::string::npos) << cm_errmsg();
  cm_counter_add(s, 4);
  EXPECT_EQ(cm_exporter_flush(e), CM_OK);
  EXPECT_EQ(t.value["hits_total{}"], 7);
  EXPECT_EQ(t.calls, 2);
  EXPECT_EQ(cm_exporter_flush(e), CM_OK);  // nothing changed: no call
  EXPECT_EQ(t.calls, 2);

  // The self-metrics: one refused flush, one sent; not given to the callback.
  char* text = nullptr;
  ASSERT_EQ(cm_registry_render(reg.get(), CM_FORMAT_PROMETHEUS, &text, nullptr), CM_OK);
  std::string out(text);
  cm_free(text);
  EXPECT_NE(out.find("cachemeter_exporter_sends_total{exporter=\"cb\",result=\"error\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("cachemeter_exporter_sends_total{exporter=\"cb\",result=\"ok\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("cachemeter_exporter_last_success_timestamp_seconds{exporter=\"cb\"} 1"), std::string::npos) << out;
  for (const auto& [k, v] : t.value) EXPECT_EQ(k.find("exporter_"), std::string::npos) << k;
  cm_exporter_stop(e);
}

TEST(CallbackExporter, AllAndValuesOptions) {
  RegPtr reg = new_registry();
  cm_family* f = nullptr;
  ASSERT_EQ(cm_counter_new(reg.get(), "hits", "Hits.", nullptr, 0, &f), CM_OK);
  cm_series* s = nullptr;
  ASSERT_EQ(cm_family_series(f, nullptr, 0, &s), CM_OK);
  cm_counter_add(s, 2);
  Totals t;
  cm_exporter* e = nullptr;
  ASSERT_EQ(cm_exporter_start_callback(&e, reg.get(), record, &t, "interval_ms=0&all=1&deltas=0"), CM_OK);
  EXPECT_EQ(cm_exporter_flush(e), CM_OK);
  EXPECT_EQ(cm_exporter_flush(e), CM_OK);  // all=1: called although nothing changed
  EXPECT_EQ(t.calls, 2);
  EXPECT_EQ(t.value["hits_total{}"], 4);  // deltas=0: the value each time
  cm_exporter_stop(e);
}

TEST(Exporters, FreeingTheRegistryFlushesThemAndStopOnlyFreesTheHandle) {
  Totals t;
  cm_exporter* e = nullptr;
  {
    RegPtr reg = new_registry();
    cm_family* f = nullptr;
    ASSERT_EQ(cm_counter_new(reg.get(), "hits", "Hits.", nullptr, 0, &f), CM_OK);
    cm_series* s = nullptr;
    ASSERT_EQ(cm_family_series(f, nullptr, 0, &s), CM_OK);
    ASSERT_EQ(cm_exporter_start_callback(&e, reg.get(), record, &t, "interval_ms=0"), CM_OK);
    cm_counter_add(s, 5);
  }  // freed: the final flush
  EXPECT_EQ(t.calls, 1);
  EXPECT_EQ(t.value["hits_total{}"], 5);
  cm_exporter_stop(e);  // only frees
  cm_exporter_stop(nullptr);
}

TEST(Exporters, BadArgumentsAndUris) {
  RegPtr reg = new_registry();
  cm_exporter* e = reinterpret_cast<cm_exporter*>(1);
  struct Case {
    const char* uri;
    int status;
    const char* says;
  } cases[] = {
      {"statsd://127.0.0.1:8125?colour=red", CM_EINVAL, "colour"},
      {"statsd://127.0.0.1:8125?tags=influx", CM_EINVAL, "tags="},
      {"statsd://127.0.0.1:8125?max_packet=10", CM_EINVAL, "max_packet"},
      {"statsd://127.0.0.1:8125?interval_ms=-1", CM_EINVAL, "interval_ms"},
      {"statsd://127.0.0.1", CM_EINVAL, "host:port"},
      {"statsd://127.0.0.1:http", CM_EINVAL, "port"},
      {"statsd+unix://relative/path", CM_EINVAL, "absolute"},
      {"carrier-pigeon://coop", CM_EINVAL, "unknown exporter scheme"},
      {"no scheme", CM_EINVAL, ""},
      {"statsd://no-such-host.invalid:8125", CM_EUNAVAILABLE, "resolve"},
  };
  for (const Case& c : cases) {
    e = reinterpret_cast<cm_exporter*>(1);
    EXPECT_EQ(cm_exporter_start(&e, reg.get(), c.uri), c.status) << c.uri;
    EXPECT_EQ(e, nullptr) << c.uri;
    EXPECT_NE(std::string(cm_errmsg()).find(c.says), std::string::npos) << c.uri << ": " << cm_errmsg();
  }
  EXPECT_EQ(cm_exporter_start(nullptr, reg.get(), "statsd://127.0.0.1:1"), CM_EINVAL);
  EXPECT_EQ(cm_exporter_start(&e, nullptr, "statsd://127.0.0.1:1"), CM_EINVAL);
  EXPECT_EQ(cm_exporter_start(&e, reg.get(), nullptr), CM_EINVAL);
  EXPECT_EQ(cm_exporter_start_callback(&e, reg.get(), nullptr, nullptr, ""), CM_EINVAL);
  EXPECT_EQ(cm_exporter_start_callback(&e, reg.get(), record, nullptr, "deltas=maybe"), CM_EINVAL);
  EXPECT_NE(std::string(cm_errmsg()).find("deltas"), std::string::npos) << cm_errmsg();
  EXPECT_EQ(cm_exporter_flush(nullptr), CM_EINVAL);

  // Names are unique per registry.
  cm_exporter *a = nullptr, *b = nullptr;
  ASSERT_EQ(cm_exporter_start(&a, reg.get(), "statsd://127.0.0.1:9?interval_ms=0"), CM_OK) << cm_errmsg();
  EXPECT_EQ(cm_exporter_start(&b, reg.get(), "statsd://127.0.0.1:10?interval_ms=0"), CM_EEXIST);
  EXPECT_NE(std::string(cm_errmsg()).find("name="), std::string::npos) << cm_errmsg();
  ASSERT_EQ(cm_exporter_start(&b, reg.get(), "statsd://127.0.0.1:10?interval_ms=0&name=second"), CM_OK);
  cm_exporter_stop(a);
  cm_exporter_stop(b);
}

// ---- StatsD ----------------------------------------------------------------

// One StatsD line, parsed strictly: name:value|type[|@rate][|#k:v,...].
struct Line {
  std::string name, type;
  double value = 0, rate = 1;
  std::vector<std::pair<std::string, std::string>> tags;
};

bool name_char(char c, bool tag_key) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.' || (tag_key && c == '/');
}

double strict_number(const std::string& s) {
  EXPECT_FALSE(s.empty());
  size_t used = 0;
  double v = std::stod(s, &used);
  EXPECT_EQ(used, s.size()) << "not a number: " << s;
  return v;
}

Line parse_line(const std::string& l) {
  Line out;
  size_t colon = l.find(':');
  EXPECT_NE(colon, std::string::npos) << l;
  out.name = l.substr(0, colon);
  EXPECT_FALSE(out.name.empty()) << l;
  for (char c : out.name) EXPECT_TRUE(name_char(c, false)) << "name char '" << c << "' in " << l;
  std::vector<std::string> fields;
  size_t pos = colon + 1;
  for (;;) {
    size_t bar = l.find('|', pos);
    fields.push_back(l.substr(pos, bar == std::string::npos ? std::string::npos : bar - pos));
    if (bar == std::string::npos) break;
    pos = bar + 1;
  }
  EXPECT_GE(fields.size(), 2u) << l;
  out.value = strict_number(fields[0]);
  out.type = fields[1];
  EXPECT_TRUE(out.type == "c" || out.type == "g" || out.type == "ms") << l;
  for (size_t i = 2; i < fields.size(); ++i) {
    const std::string& f = fields[i];
    if (f[0] == '@') {
      // Plain decimal only: Etsy's statsd reads /^@([\d.]+)/.
      EXPECT_EQ(f.find_first_not_of("0123456789.", 1), std::string::npos) << "rate " << f << " in " << l;
      out.rate = strict_number(f.substr(1));
      EXPECT_GT(out.rate, 0);
      EXPECT_LE(out.rate, 1);
    } else if (f[0] == '#') {
      size_t p = 1;
      while (p <= f.size()) {
        size_t comma = f.find(',', p);
        std::string tag = f.substr(p, comma == std::string::npos ? std::string::npos : comma - p);
        size_t c = tag.find(':');
        EXPECT_NE(c, std::string::npos) << l;
        std::string k = tag.substr(0, c), v = tag.substr(c + 1);
        for (char ch : k) EXPECT_TRUE(name_char(ch, true)) << "tag key char in " << l;
        for (char ch : v) EXPECT_TRUE(static_cast<unsigned char>(ch) >= 0x20 && ch != '|' && ch != ',' && ch != '#' && ch != '@') << l;
        out.tags.emplace_back(k, v);
        if (comma == std::string::npos) break;
        p = comma + 1;
      }
    } else {
      ADD_FAILURE() << "unknown field " << f << " in " << l;
    }
  }
  return out;
}

// A datagram receiver on a real socket (UDP on 127.0.0.1, or Unix).
class Receiver {
 public:
  explicit Receiver(int family, const std::string& path = "") {
    fd_ = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    int big = 4 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (family == AF_INET) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = 0;  // the kernel picks a free port
      EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
      socklen_t len = sizeof a;
      getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
      port_ = ntohs(a.sin_port);
    } else {
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
      EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    }
  }
  ~Receiver() { ::close(fd_); }
  int port() const { return port_; }
  // Every datagram queued now (a send on one machine is queued before
  // sendto returns: no waiting needed after a flush).
  std::vector<std::string> drain() {
    std::vector<std::string> out;
    char buf[70000];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) break;
      out.emplace_back(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

std::vector<Line> lines_of(const std::vector<std::string>& datagrams) {
  std::vector<Line> out;
  for (const std::string& d : datagrams) {
    size_t pos = 0;
    while (pos <= d.size()) {
      size_t nl = d.find('\n', pos);
      out.push_back(parse_line(d.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos)));
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
  }
  return out;
}

// What a StatsD server makes of the lines: counters summed (weighted by the
// sample rate), gauges last value (a signed value after a set adds), timers'
// count weighted by the rate.
struct Server {
  std::map<std::string, double> counters, gauges, timer_count;
  void take(const std::vector<Line>& lines, bool with_tags) {
    for (const Line& l : lines) {
      std::string k = l.name;
      if (with_tags)
        for (const auto& [tk, tv] : l.tags) k += "|" + tk + "=" + tv;
      if (l.type == "c") counters[k] += l.value / l.rate;
      if (l.type == "g") gauges[k] = l.value < 0 ? gauges[k] + l.value : l.value;
      if (l.type == "ms") timer_count[k] += 1 / l.rate;
    }
  }
};

TEST(StatsdExporter, UdpCountersGaugesAndHistogramsMatchTheRegistryOverSeveralFlushes) {
  Receiver rx(AF_INET);
  RegPtr reg = new_registry("const_labels=env:ci");
  const char* labels[] = {"cache"};
  cm_family *ctr = nullptr, *g = nullptr, *h = nullptr;
  ASSERT_EQ(cm_counter_new(reg.get(), "app_hits", "Hits.", labels, 1, &ctr), CM_OK);
  ASSERT_EQ(cm_gauge_new(reg.get(), "app_level", "Level.", labels, 1, &g), CM_OK);
  const double bounds[] = {0.001, 0.01, 0.1};
  ASSERT_EQ(cm_histogram_new(reg.get(), "app_seconds", "Time.", labels, 1, bounds, 3, &h), CM_OK);
  const char* users[] = {"users"};
  cm_series *c = nullptr, *gs = nullptr, *hs = nullptr;
  ASSERT_EQ(cm_family_series(ctr, users, 1, &c), CM_OK);
  ASSERT_EQ(cm_family_series(g, users, 1, &gs), CM_OK);
  ASSERT_EQ(cm_family_series(h, users, 1, &hs), CM_OK);

  std::string uri = "statsd://127.0.0.1:" + std::to_string(rx.port()) + "?interval_ms=0&prefix=myapp";
  cm_exporter* e = nullptr;
  ASSERT_EQ(cm_exporter_start(&e, reg.get(), uri.c_str()), CM_OK) << cm_errmsg();
  Server srv;
  double hsum = 0;
  for (int round = 0; round < 5; ++round) {
    cm_counter_add(c, round + 1);
    cm_gauge_set(gs, round % 2 ? -2.5 : 7);
    for (int i = 0; i <= round; ++i) {
      double v = 0.0005 * (i + 1) * (round + 1);
      cm_histogram_observe(hs, v);
      hsum += v;
    }
    ASSERT_EQ(cm_exporter_flush(e), CM_OK) << cm_errmsg();
    srv.take(lines_of(rx.drain()), true);
  }
  // A bucket that went up by 123457 at once: a rate far below 1e-4.
  for (int i = 0; i < 123457; ++i) cm_histogram_observe(hs, 0.05);
  hsum += 123457 * 0.05;
  ASSERT_EQ(cm_exporter_flush(e), CM_OK);
  srv.take(lines_of(rx.drain()), true);
  EXPECT_EQ(rx.drain().size(), 0u);
  ASSERT_EQ(cm_exporter_flush(e), CM_OK);  // nothing changed: nothing sent
  EXPECT_EQ(rx.drain().size(), 0u);

  const std::string tags = "|env=ci|cache=users";
  EXPECT_EQ(srv.counters["myapp.app_hits_total" + tags], 15);
  EXPECT_EQ(srv.counters["myapp.app_hits_total" + tags], cm_series_value(c));
  EXPECT_EQ(srv.gauges["myapp.app_level" + tags], 7);  // round 4
  EXPECT_NEAR(srv.timer_count["myapp.app_seconds" + tags], 15 + 123457, 1e-6);
  EXPECT_EQ(srv.counters["myapp.app_seconds_count" + tags], 15 + 123457);
  EXPECT_NEAR(srv.counters["myapp.app_seconds_sum" + tags], hsum, 1e-9 * hsum);
  cm_exporter_stop(e);
}

// The series label=value of a new counter family name{label} in reg.
cm_series* counter_series(cm_registry* reg, const char* name, const char* label, const char* value) {
  cm_family* f = nullptr;
  EXPECT_EQ(cm_counter_new(reg, name, "A counter.", &label, 1, &f), CM_OK) << cm_errmsg();
  cm_series* s = nullptr;
  EXPECT_EQ(cm_family_series(f, &value, 1, &s), CM_OK) << cm_errmsg();
  return s;
}

TEST(StatsdExporter, HostileLabelValuesNeverBreakALineAndTagsNoneFoldsThem) {
  Receiver rx(AF_INET);
  RegPtr reg = new_registry();
  cm_series* s = counter_series(reg.get(), "hits", "cache", "a:b|c@d#e,f\ng\rh i/j.k");
  ASSERT_NE(s, nullptr);
  cm_counter_add(s, 3);
  for (const char* mode : {"dogstatsd", "none"}) {
    std::string uri = "statsd://127.0.0.1:" + std::to_string(rx.port()) + "?interval_ms=0&tags=" + mode + "&name=" + mode;
    cm_exporter* e = nullptr;
    ASSERT_EQ(cm_exporter_start(&e, reg.get(), uri.c_str()), CM_OK) << cm_errmsg();
    ASSERT_EQ(cm_exporter_flush(e), CM_OK);
    std::vector<std::string> d = rx.drain();
    ASSERT_EQ(d.size(), 1u);
    std::vector<Line> lines = lines_of(d);  // strict: fails on a broken line
    ASSERT_EQ(lines.size(), 1u) << d[0];
    EXPECT_EQ(lines[0].value, 3);
    if (std::string(mode) == "dogstatsd") {
      EXPECT_EQ(lines[0].name, "hits_total");
      ASSERT_EQ(lines[0].tags.size(), 1u);
      EXPECT_EQ(lines[0].tags[0].first, "cache");
      EXPECT_EQ(lines[0].tags[0].second, "a:b_c_d_e_f_g_h i/j.k");
    } else {
      EXPECT_EQ(lines[0].name, "hits_total.cache.a_b_c_d_e_f_g_h_i_j_k");
      EXPECT_TRUE(lines[0].tags.empty());
    }
    cm_exporter_stop(e);
  }
}

TEST(StatsdExporter, PacksLinesIntoDatagramsOfAtMostMaxPacket) {
  Receiver rx(AF_INET);
  RegPtr reg = new_registry();
  const char* labels[] = {"n"};
  cm_family* ctr = nullptr;
  ASSERT_EQ(cm_counter_new(reg.get(), "packed", "P.", labels, 1, &ctr), CM_OK);
  for (int i = 0; i < 300; ++i) {
    std::string v = std::to_string(i);
    const char* vals[] = {v.c_str()};
    cm_series* s = nullptr;
    ASSERT_EQ(cm_family_series(ctr, vals, 1, &s), CM_OK);
    cm_counter_add(s, i + 1);
  }
  std::string uri = "statsd://127.0.0.1:" + std::to_string(rx.port()) + "?interval_ms=0&max_packet=512";
  cm_exporter* e = nullptr;
  ASSERT_EQ(cm_exporter_start(&e, reg.get(), uri.c_str()), CM_OK);
  ASSERT_EQ(cm_exporter_flush(e), CM_OK);
  std::vector<std::string> d = rx.drain();
  EXPECT_GT(d.size(), 5u);
  for (const std::string& p : d) EXPECT_LE(p.size(), 512u);
  Server srv;
  srv.take(lines_of(d), true);
  double total = 0;
  for (const auto& [k, v] : srv.counters) total += v;
  EXPECT_EQ(total, 300 * 301 / 2);
  EXPECT_EQ(srv.counters.size(), 300u);
  cm_exporter_stop(e);
}

TEST(StatsdExporter, UnixSocketDownKeepsDeltasPendingUntilItIsBack) {
  char dir[] = "/tmp/cm-statsd-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/dsd.socket";
  RegPtr reg = new_registry();
  cm_family* ctr = nullptr;
  ASSERT_EQ(cm_counter_new(reg.get(), "hits", "Hits.", nullptr, 0, &ctr), CM_OK);
  cm_series* s = nullptr;
  ASSERT_EQ(cm_family_series(ctr, nullptr, 0, &s), CM_OK);
  std::string uri = "statsd+unix://" + path + "?interval_ms=0";
  cm_exporter* e = nullptr;
  ASSERT_EQ(cm_exporter_start(&e, reg.get(), uri.c_str()), CM_OK) << cm_errmsg();
  cm_counter_add(s, 2);
  EXPECT_EQ(cm_exporter_flush(e), CM_EUNAVAILABLE);  // nobody listens yet
  cm_counter_add(s, 3);
  EXPECT_EQ(cm_exporter_flush(e), CM_EUNAVAILABLE);
  {
    Receiver rx(AF_UNIX, path);
    cm_counter_add(s, 4);
    ASSERT_EQ(cm_exporter_flush(e), CM_OK) << cm_errmsg();
    Server srv;
    srv.take(lines_of(rx.drain()), false);
    EXPECT_EQ(srv.counters["hits_total"], 9);  // nothing lost, nothing twice
    cm_counter_add(s, 1);
    ASSERT_EQ(cm_exporter_flush(e), CM_OK);
    Server again;
    again.take(lines_of(rx.drain()), false);
    EXPECT_EQ(again.counters["hits_total"], 1);
  }
  char* text = nullptr;
  ASSERT_EQ(cm_registry_render(reg.get(), CM_FORMAT_PROMETHEUS, &text, nullptr), CM_OK);
  std::string out(text);
  cm_free(text);
  EXPECT_NE(out.find("cachemeter_exporter_sends_total{exporter=\"statsd+unix\",result=\"error\"} 2\n"), std::string::npos) << out;
  cm_exporter_stop(e);
  unlink(path.c_str());
  rmdir(dir);
}

// A Unix receiver that stops reading: its queue fills, sends fail halfway
// through a flush (CM_ETIMEOUT), and what went out before stays delivered.
// Draining and flushing again until a flush succeeds, the receiver has every
// series' value exactly once: nothing lost, nothing twice.
TEST(StatsdExporter, AFullReceiverQueueFailsHalfwayAndLosesOrRepeatsNothing) {
  char dir[] = "/tmp/cm-statsd-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/dsd.socket";
  Receiver rx(AF_UNIX, path);
  RegPtr reg = new_registry();
  const char* labels[] = {"n"};
  cm_family* ctr = nullptr;
  ASSERT_EQ(cm_counter_new(reg.get(), "jobs", "J.", labels, 1, &ctr), CM_OK);
  // One datagram each: more than a Unix receiver's queue holds
  // (net.unix.max_dgram_qlen: 10 here, 512 on some systems).
  constexpr int kSeries = 600;
  std::vector<cm_series*> s(kSeries);
  for (int i = 0; i < kSeries; ++i) {
    std::string v = std::to_string(i);
    const char* vals[] = {v.c_str()};
    ASSERT_EQ(cm_family_series(ctr, vals, 1, &s[i]), CM_OK);
    cm_counter_add(s[i], i + 1);
  }
  std::string uri = "statsd+unix://" + path + "?interval_ms=0&max_packet=64&timeout_ms=5&tags=none";
  cm_exporter* e = nullptr;
  ASSERT_EQ(cm_exporter_start(&e, reg.get(), uri.c_str()), CM_OK) << cm_errmsg();
  Server srv;
  int failed = 0, rc = CM_OK;
  for (int round = 0; round < 5000; ++round) {
    rc = cm_exporter_flush(e);
    srv.take(lines_of(rx.drain()), false);
    if (rc == CM_OK) break;
    EXPECT_EQ(rc, CM_ETIMEOUT) << cm_errmsg();
    ++failed;
    if (round == 0) cm_counter_add(s[0], 1000);  // counting goes on meanwhile
  }
  ASSERT_EQ(rc, CM_OK);
  EXPECT_GT(failed, 0) << "the queue never filled: the test proved nothing";
  ASSERT_EQ(srv.counters.size(), static_cast<size_t>(kSeries));
  for (int i = 0; i < kSeries; ++i) {
    std::string k = "jobs_total.n." + std::to_string(i);
    EXPECT_EQ(srv.counters[k], cm_series_value(s[i])) << k;
  }
  cm_exporter_stop(e);
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
