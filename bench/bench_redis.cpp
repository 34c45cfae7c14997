// SPDX-License-Identifier: Apache-2.0
// The redis:// backend through the public C API against raw hiredis on one
// synchronous connection to the same redis-server, in one binary and run
// (issue 6: ours >= 0.9x raw throughput). 16-byte keys, 100-byte values,
// 10k keys written before the timed loops (every get is a hit):
//   raw_hiredis          redisCommand(ctx, "GET %b") / "SET %b %b": the baseline
//   raw_hiredis_wire     redisCommandArgv with the bytes our backend sends
//                        (prefixed key, 20-byte header + value): the baseline
//                        plus only the larger request, so the rest is our code
//   cachemeter           cm_cache_get/cm_cache_set on redis://...?pool=1,
//                        metrics on with the default sampling (1 in 16 timed)
//   cachemeter_nometrics the same with metrics=off: backend cost alone
//   paired               one raw_hiredis and one cachemeter operation per
//                        iteration, in alternating order, each timed: both
//                        sides see the same machine load (on a shared machine
//                        separate rows drift apart by more than the 10% we
//                        measure); counters raw_us, ours_us and ours_vs_raw
//                        (raw time / our time = our share of raw throughput)
// each over TCP on 127.0.0.1 and over a unix socket. Wall time per operation
// (a round trip: the server's time counts); CPU time is the client's alone.
//
// The program starts its own redis-server (free port, a unix socket in a
// temporary directory, no persistence) and stops it at exit; with
// CM_BENCH_REDIS_PORT (and optionally CM_BENCH_REDIS_SOCKET) set it uses that
// server instead, so scripts/bench.sh can run redis-benchmark against the same
// one.
#include <benchmark/benchmark.h>
#include <cachemeter/cachemeter.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kKeys = 10000;
constexpr size_t kKeyLen = 16;
constexpr size_t kValueLen = 100;
constexpr size_t kHeaderLen = 20;  // the backend's value header (backends/redis.h)
constexpr const char* kRedisServer = "/usr/bin/redis-server";

[[noreturn]] void die(const char* what, const char* detail) {
  std::fprintf(stderr, "bench_redis: %s: %s\n", what, detail ? detail : "");
  std::abort();
}

void check(int status, const char* what) {
  if (status != CM_OK) {
    std::fprintf(stderr, "bench_redis: %s failed: %s: %s\n", what, cm_status_name(status), cm_errmsg());
    std::abort();
  }
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("free_port", std::strerror(errno));
  socklen_t n = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool ping(int port) {
  timeval tv{0, 200000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  bool ok = false;
  if (c && !c->err) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
  }
  if (c) redisFree(c);
  return ok;
}

// Our own redis-server, or the one named by CM_BENCH_REDIS_PORT.
class Server {
 public:
  Server() {
    if (const char* p = std::getenv("CM_BENCH_REDIS_PORT")) {
      port_ = std::atoi(p);
      if (const char* s = std::getenv("CM_BENCH_REDIS_SOCKET")) socket_ = s;
      if (!ping(port_)) die("CM_BENCH_REDIS_PORT", "no redis-server answers PING there");
      return;
    }
    char tmpl[] = "/tmp/cm-bench-redis-XXXXXX";
    if (!::mkdtemp(tmpl)) die("mkdtemp", std::strerror(errno));
    dir_ = tmpl;
    socket_ = dir_ + "/redis.sock";
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) start(free_port());
    if (pid_ <= 0) die("redis-server did not start", (dir_ + "/redis.log").c_str());
  }
  ~Server() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      for (int i = 0; i < 500 && ::waitpid(pid_, &st, WNOHANG) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ::kill(pid_, SIGKILL);  // harmless when it exited
      ::waitpid(pid_, &st, WNOHANG);
    }
    if (!dir_.empty()) {
      std::remove((dir_ + "/redis.log").c_str());
      std::remove(socket_.c_str());
      ::rmdir(dir_.c_str());
    }
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  const std::string& socket() const { return socket_; }

 private:
  void start(int port) {
    std::vector<std::string> args{kRedisServer, "--port", std::to_string(port), "--bind", "127.0.0.1",
                                  "--unixsocket", socket_, "--unixsocketperm", "700", "--save", "",
                                  "--appendonly", "no", "--dir", dir_, "--daemonize", "no",
                                  "--loglevel", "warning", "--logfile", dir_ + "/redis.log"};
    pid_t pid = ::fork();
    if (pid < 0) die("fork", std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive an aborted benchmark
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(kRedisServer, argv.data());
      ::_exit(127);
    }
    // Up to 20 s: a loaded 2-core machine can be slow to start it.
    for (int i = 0; i < 2000; ++i) {
      if (ping(port)) {
        pid_ = pid;
        port_ = port;
        return;
      }
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) return;  // died: port taken? next attempt
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }

  std::string dir_, socket_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// One transport (TCP or unix socket): a raw hiredis connection and two caches.
struct Side {
  redisContext* raw = nullptr;
  cm_cache* on = nullptr;   // metrics on (default sampling)
  cm_cache* off = nullptr;  // metrics=off
  std::vector<std::string> wire_keys;  // the keys as `on` stores them (its prefix + key)
};

struct World {
  Server server;
  cm_registry* reg = nullptr;
  std::vector<std::string> keys;
  std::string value = std::string(kValueLen, 'v');
  std::string wire_value;  // header + value, as the backend stores it
  Side tcp, unix_sock;
  // Tiered (TCP): L1 large enough for every key (gets are L1 hits), L1 of
  // one entry (gets are L2 hits), and a plain memory cache (the reference
  // for an L1 hit).
  cm_cache* tiered = nullptr;
  cm_cache* tiered_cold = nullptr;
  cm_cache* memory = nullptr;

  World() {
    for (int i = 0; i < kKeys; ++i) {
      char buf[kKeyLen + 1];
      std::snprintf(buf, sizeof buf, "bench:%010d", i);
      keys.emplace_back(buf, kKeyLen);
    }
    // The backend's header: "cm\x01\0" + fresh_until + keep_until (never).
    wire_value.assign("cm\x01\0", 4);
    for (int i = 0; i < 2; ++i)
      for (int b = 0; b < 8; ++b) wire_value.push_back(b == 7 ? '\x7f' : '\xff');
    wire_value += value;
    if (wire_value.size() != kHeaderLen + kValueLen) die("wire value", "bad size");
    check(cm_registry_new(&reg, ""), "cm_registry_new");
    const std::string tcp_uri = "redis://127.0.0.1:" + std::to_string(server.port()) + "?pool=1";
    setup(tcp, tcp_uri, "tcp", redisConnect("127.0.0.1", server.port()));
    if (!server.socket().empty()) {
      const std::string unix_uri = "redis+unix://" + server.socket() + "?pool=1";
      setup(unix_sock, unix_uri, "unix", redisConnectUnix(server.socket().c_str()));
    }
    setup_tiered("redis://127.0.0.1:" + std::to_string(server.port()));
  }

  void setup_tiered(const std::string& l2) {
    check(cm_cache_open_tiered(&tiered, reg, "bench_tiered", "memory://?max_entries=0", l2.c_str()),
          "cm_cache_open_tiered");
    check(cm_cache_open_tiered(&tiered_cold, reg, "bench_tiered_cold", "memory://?max_entries=1",
                               (l2 + "?namespace=bench_tiered").c_str()),
          "cm_cache_open_tiered (one-entry L1)");
    check(cm_cache_open(&memory, reg, "bench_memory", "memory://?max_entries=0"), "cm_cache_open (memory)");
    for (const auto& k : keys) {
      check(cm_cache_set(tiered, k.data(), k.size(), value.data(), value.size(), 0), "fill");
      check(cm_cache_set(memory, k.data(), k.size(), value.data(), value.size(), 0), "fill");
    }
    // L1 serves once the invalidation listener is connected and the fills
    // outrun the invalidations of our own writes: read every key until a
    // round is far faster than the first (all L1 hits), 200 rounds at most.
    auto round = [&] {
      auto t0 = std::chrono::steady_clock::now();
      for (const auto& k : keys) {
        void* v = nullptr;
        size_t n = 0;
        check(cm_cache_get(tiered, k.data(), k.size(), &v, &n), "warm-up get");
        cm_free(v);
      }
      return std::chrono::steady_clock::now() - t0;
    };
    auto first = round();
    for (int i = 0; i < 200 && round() * 20 > first; ++i) {
    }
  }
  ~World() {
    cm_cache_close(tiered);
    cm_cache_close(tiered_cold);
    cm_cache_close(memory);
    for (Side* s : {&tcp, &unix_sock}) {
      cm_cache_close(s->on);
      cm_cache_close(s->off);
      if (s->raw) redisFree(s->raw);
    }
    cm_registry_free(reg);
  }
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  void setup(Side& s, const std::string& uri, const std::string& tag, redisContext* raw) {
    if (!raw || raw->err) die("redisConnect", raw ? raw->errstr : "out of memory");
    s.raw = raw;
    const std::string on_name = "bench_" + tag, off_name = "bench_" + tag + "_off";
    check(cm_cache_open(&s.on, reg, on_name.c_str(), uri.c_str()), "cm_cache_open (metrics on)");
    check(cm_cache_open(&s.off, reg, off_name.c_str(), (uri + "&metrics=off").c_str()),
          "cm_cache_open (metrics=off)");
    for (const auto& k : keys) s.wire_keys.push_back("cachemeter:" + on_name + ":" + k);
    for (const auto& k : keys) {
      check(cm_cache_set(s.on, k.data(), k.size(), value.data(), value.size(), 0), "fill");
      check(cm_cache_set(s.off, k.data(), k.size(), value.data(), value.size(), 0), "fill");
      raw_set(s.raw, k);
    }
    // The wire rows read what the backend wrote: check the header matches.
    auto* r = static_cast<redisReply*>(redisCommand(s.raw, "GET %b", s.wire_keys[0].data(), s.wire_keys[0].size()));
    if (!r || r->type != REDIS_REPLY_STRING || std::string(r->str, r->len) != wire_value)
      die("the backend's stored value", "differs from the wire rows' (update kHeaderLen/wire_value)");
    freeReplyObject(r);
  }

  void raw_set(redisContext* c, const std::string& k) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "SET %b %b", k.data(), k.size(), value.data(), value.size()));
    if (!r || r->type != REDIS_REPLY_STATUS) die("raw SET", c->errstr);
    freeReplyObject(r);
  }
};

World* g_world = nullptr;

Side& side_of(bool unix_socket) { return unix_socket ? g_world->unix_sock : g_world->tcp; }

// ---- raw hiredis: the baseline

void BM_RawGet(benchmark::State& state, bool unix_socket) {
  redisContext* c = side_of(unix_socket).raw;
  const auto& keys = g_world->keys;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = keys[i++ % kKeys];
    auto* r = static_cast<redisReply*>(redisCommand(c, "GET %b", k.data(), k.size()));
    if (!r || r->type != REDIS_REPLY_STRING || r->len != kValueLen) die("raw GET", c->errstr);
    benchmark::DoNotOptimize(r->str[0]);
    freeReplyObject(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RawSet(benchmark::State& state, bool unix_socket) {
  redisContext* c = side_of(unix_socket).raw;
  const auto& keys = g_world->keys;
  const std::string& v = g_world->value;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = keys[i++ % kKeys];
    auto* r = static_cast<redisReply*>(redisCommand(c, "SET %b %b", k.data(), k.size(), v.data(), v.size()));
    if (!r || r->type != REDIS_REPLY_STATUS) die("raw SET", c->errstr);
    freeReplyObject(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// The same commands with the bytes our backend puts on the wire, through
// redisCommandArgv as the backend does (keys prebuilt: no formatting cost).
void BM_RawWireGet(benchmark::State& state, bool unix_socket) {
  Side& s = side_of(unix_socket);
  const auto& keys = s.wire_keys;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = keys[i++ % kKeys];
    const char* argv[] = {"GET", k.data()};
    size_t lens[] = {3, k.size()};
    auto* r = static_cast<redisReply*>(redisCommandArgv(s.raw, 2, argv, lens));
    if (!r || r->type != REDIS_REPLY_STRING || r->len != kHeaderLen + kValueLen) die("raw wire GET", s.raw->errstr);
    benchmark::DoNotOptimize(r->str[0]);
    freeReplyObject(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RawWireSet(benchmark::State& state, bool unix_socket) {
  Side& s = side_of(unix_socket);
  const auto& keys = s.wire_keys;
  const std::string& v = g_world->wire_value;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = keys[i++ % kKeys];
    const char* argv[] = {"SET", k.data(), v.data()};
    size_t lens[] = {3, k.size(), v.size()};
    auto* r = static_cast<redisReply*>(redisCommandArgv(s.raw, 3, argv, lens));
    if (!r || r->type != REDIS_REPLY_STATUS) die("raw wire SET", s.raw->errstr);
    freeReplyObject(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// ---- cachemeter through the public C API

void cm_get_loop(benchmark::State& state, cm_cache* c) {
  const auto& keys = g_world->keys;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = keys[i++ % kKeys];
    void* v = nullptr;
    size_t n = 0;
    int rc = cm_cache_get(c, k.data(), k.size(), &v, &n);
    if (rc != CM_OK || n != kValueLen) check(rc == CM_OK ? CM_EBACKEND : rc, "cm_cache_get (a hit)");
    benchmark::DoNotOptimize(static_cast<char*>(v)[0]);
    cm_free(v);
  }
  state.SetItemsProcessed(state.iterations());
}

void cm_set_loop(benchmark::State& state, cm_cache* c) {
  const auto& keys = g_world->keys;
  const std::string& v = g_world->value;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = keys[i++ % kKeys];
    int rc = cm_cache_set(c, k.data(), k.size(), v.data(), v.size(), 0);
    if (rc != CM_OK) check(rc, "cm_cache_set");
  }
  state.SetItemsProcessed(state.iterations());
}

// One raw and one cachemeter operation per iteration, alternating which goes
// first (so neither always finds the server just woken up), each timed.
template <bool kSet>
void paired(benchmark::State& state, bool unix_socket) {
  Side& s = side_of(unix_socket);
  const auto& keys = g_world->keys;
  const std::string& val = g_world->value;
  using clock = std::chrono::steady_clock;
  auto raw_op = [&](const std::string& k) {
    auto* r = static_cast<redisReply*>(kSet ? redisCommand(s.raw, "SET %b %b", k.data(), k.size(), val.data(), val.size())
                                            : redisCommand(s.raw, "GET %b", k.data(), k.size()));
    if (!r || r->type != (kSet ? REDIS_REPLY_STATUS : REDIS_REPLY_STRING)) die("raw command", s.raw->errstr);
    freeReplyObject(r);
  };
  auto our_op = [&](const std::string& k) {
    if constexpr (kSet) {
      check(cm_cache_set(s.on, k.data(), k.size(), val.data(), val.size(), 0), "cm_cache_set");
    } else {
      void* v = nullptr;
      size_t n = 0;
      check(cm_cache_get(s.on, k.data(), k.size(), &v, &n), "cm_cache_get");
      cm_free(v);
    }
  };
  clock::duration raw{}, ours{};
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = keys[i % kKeys];
    const bool raw_first = (i++ & 1) == 0;
    auto t0 = clock::now();
    if (raw_first) raw_op(k); else our_op(k);
    auto t1 = clock::now();
    if (raw_first) our_op(k); else raw_op(k);
    auto t2 = clock::now();
    raw += raw_first ? t1 - t0 : t2 - t1;
    ours += raw_first ? t2 - t1 : t1 - t0;
  }
  using benchmark::Counter;
  const double raw_us = std::chrono::duration<double, std::micro>(raw).count();
  const double ours_us = std::chrono::duration<double, std::micro>(ours).count();
  state.counters["raw_us"] = Counter(raw_us, Counter::kAvgIterations);
  state.counters["ours_us"] = Counter(ours_us, Counter::kAvgIterations);
  state.counters["ours_vs_raw"] = ours_us > 0 ? raw_us / ours_us : 0;
}

void BM_PairedGet(benchmark::State& state, bool unix_socket) { paired<false>(state, unix_socket); }
void BM_PairedSet(benchmark::State& state, bool unix_socket) { paired<true>(state, unix_socket); }

void BM_CmGet(benchmark::State& state, bool unix_socket) { cm_get_loop(state, side_of(unix_socket).on); }
void BM_CmSet(benchmark::State& state, bool unix_socket) { cm_set_loop(state, side_of(unix_socket).on); }
void BM_CmGetNoMetrics(benchmark::State& state, bool unix_socket) { cm_get_loop(state, side_of(unix_socket).off); }
void BM_CmSetNoMetrics(benchmark::State& state, bool unix_socket) { cm_set_loop(state, side_of(unix_socket).off); }

void BM_TieredL1Hit(benchmark::State& state, bool) { cm_get_loop(state, g_world->tiered); }
void BM_TieredL2Hit(benchmark::State& state, bool) { cm_get_loop(state, g_world->tiered_cold); }
void BM_MemoryHit(benchmark::State& state, bool) { cm_get_loop(state, g_world->memory); }

// Batches of 64 gets from the tiered L1 and from a plain memory cache, in
// alternating order, each batch timed: ratio l1_vs_memory = memory time /
// L1 time (1.0: the same cost; the target is >= 0.9).
void BM_TieredL1Paired(benchmark::State& state, bool) {
  using clock = std::chrono::steady_clock;
  const auto& keys = g_world->keys;
  auto batch = [&](cm_cache* c, size_t from) {
    for (size_t j = 0; j < 64; ++j) {
      const std::string& k = keys[(from + j) % kKeys];
      void* v = nullptr;
      size_t n = 0;
      if (cm_cache_get(c, k.data(), k.size(), &v, &n) != CM_OK) check(CM_EBACKEND, "paired get (a hit)");
      benchmark::DoNotOptimize(static_cast<char*>(v)[0]);
      cm_free(v);
    }
  };
  clock::duration l1{}, mem{};
  size_t i = 0;
  for (auto _ : state) {
    const bool l1_first = (i & 1) == 0;
    auto t0 = clock::now();
    batch(l1_first ? g_world->tiered : g_world->memory, i * 64);
    auto t1 = clock::now();
    batch(l1_first ? g_world->memory : g_world->tiered, i * 64);
    auto t2 = clock::now();
    l1 += l1_first ? t1 - t0 : t2 - t1;
    mem += l1_first ? t2 - t1 : t1 - t0;
    ++i;
  }
  using benchmark::Counter;
  const double l1_ns = std::chrono::duration<double, std::nano>(l1).count() / 64;
  const double mem_ns = std::chrono::duration<double, std::nano>(mem).count() / 64;
  state.counters["l1_ns"] = Counter(l1_ns, Counter::kAvgIterations);
  state.counters["memory_ns"] = Counter(mem_ns, Counter::kAvgIterations);
  state.counters["l1_vs_memory"] = l1_ns > 0 ? mem_ns / l1_ns : 0;
}

// Rows named <op>/<transport>/<side>: a pair differs only by the side.
void register_all() {
  struct Row {
    const char* op;
    const char* side;
    void (*fn)(benchmark::State&, bool);
  };
  const Row rows[] = {
      {"get", "raw_hiredis", BM_RawGet},          {"get", "raw_hiredis_wire", BM_RawWireGet},
      {"get", "cachemeter", BM_CmGet},            {"get", "cachemeter_nometrics", BM_CmGetNoMetrics},
      {"set", "raw_hiredis", BM_RawSet},          {"set", "raw_hiredis_wire", BM_RawWireSet},
      {"set", "cachemeter", BM_CmSet},            {"set", "cachemeter_nometrics", BM_CmSetNoMetrics},
      {"get", "paired", BM_PairedGet},            {"set", "paired", BM_PairedSet},
  };
  benchmark::RegisterBenchmark("tiered/get/l1_hit", BM_TieredL1Hit, false)->UseRealTime();
  benchmark::RegisterBenchmark("tiered/get/memory_hit", BM_MemoryHit, false)->UseRealTime();
  benchmark::RegisterBenchmark("tiered/get/l1_paired", BM_TieredL1Paired, false)->UseRealTime();
  benchmark::RegisterBenchmark("tiered/get/l2_hit", BM_TieredL2Hit, false)->UseRealTime();
  for (bool unix_socket : {false, true}) {
    if (unix_socket && g_world->server.socket().empty()) continue;
    for (const Row& r : rows) {
      std::string name = std::string(r.op) + (unix_socket ? "/unix/" : "/tcp/") + r.side;
      benchmark::RegisterBenchmark(name.c_str(), r.fn, unix_socket)->UseRealTime();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (::access(kRedisServer, X_OK) != 0 && !std::getenv("CM_BENCH_REDIS_PORT")) {
    std::fprintf(stderr, "bench_redis: %s is not installed (apt-get install redis-server)\n", kRedisServer);
    return 1;
  }
  // The raw rows write with hiredis directly: a server that dies mid-run must
  // fail them with EPIPE (and a message), not kill the program.
  signal(SIGPIPE, SIG_IGN);
  {
    World world;
    g_world = &world;
    benchmark::AddCustomContext("redis_port", std::to_string(world.server.port()));
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    g_world = nullptr;
  }
  benchmark::Shutdown();
  return 0;
}
