// SPDX-License-Identifier: Apache-2.0
// redis+cluster:// through the public C API against raw hiredis on the same
// 3-primary cluster, in one run (issue 19: ours >= 0.9x raw hiredis per
// connection), plus the latency of the first call after a MOVED.
//
// Run by bench/bench_redis_cluster.sh, which starts the cluster and passes
// its primaries' ports in CM_BENCH_CLUSTER_PORTS ("p1,p2,p3").
//   paired get/set  one raw hiredis command (on a connection to the key's
//                   owner, found once with CLUSTER KEYSLOT + CLUSTER SLOTS,
//                   pipeline depth 1, the exact bytes our backend sends) and
//                   one cm_cache_get/cm_cache_set (pool=1 per node, metrics on)
//                   per iteration, in alternating order, each timed: both see
//                   the same machine load. ratio = raw time / our time.
//   after MOVED     a slot is moved by hand (SETSLOT IMPORTING/MIGRATING,
//                   MIGRATE, SETSLOT NODE on every primary); the first get of
//                   its key then meets MOVED; timed against the next get.
#include <cachemeter/cachemeter.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_redis_cluster: %s\n", what.c_str());
  std::exit(1);
}

using Clock = std::chrono::steady_clock;
double us_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }

struct Raw {
  explicit Raw(int port) : port(port) {
    timeval tv{5, 0};
    c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) die("cannot connect to " + std::to_string(port));
  }
  ~Raw() { redisFree(c); }
  redisReply* cmd(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!r) die("raw command failed on " + std::to_string(port));
    return r;
  }
  std::string text(const std::vector<std::string>& args) {
    redisReply* r = cmd(args);
    std::string out = r->str ? std::string(r->str, r->len) : std::to_string(r->integer);
    freeReplyObject(r);
    return out;
  }
  int port;
  redisContext* c;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main() {
  const char* env = std::getenv("CM_BENCH_CLUSTER_PORTS");
  if (!env) die("CM_BENCH_CLUSTER_PORTS is not set (run bench/bench_redis_cluster.sh)");
  std::vector<int> ports;
  for (const char* p = env; *p;) {
    ports.push_back(std::atoi(p));
    const char* comma = std::strchr(p, ',');
    if (!comma) break;
    p = comma + 1;
  }
  std::map<int, std::unique_ptr<Raw>> raw;
  for (int p : ports) raw[p] = std::make_unique<Raw>(p);
  // slot -> owner port, and node id -> port.
  std::vector<int> owner(16384, 0);
  std::map<int, std::string> id_of;
  {
    redisReply* r = raw[ports[0]]->cmd({"CLUSTER", "SLOTS"});
    for (size_t i = 0; i < r->elements; ++i) {
      redisReply* e = r->element[i];
      int port = static_cast<int>(e->element[2]->element[1]->integer);
      id_of[port] = std::string(e->element[2]->element[2]->str);
      for (long long s = e->element[0]->integer; s <= e->element[1]->integer; ++s) owner[s] = port;
    }
    freeReplyObject(r);
  }

  std::string uri = "redis+cluster://";
  for (size_t i = 0; i < ports.size(); ++i) uri += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(ports[i]);
  uri += "/?pool=1";
  cm_registry* reg = nullptr;
  cm_cache* c = nullptr;
  if (cm_registry_new(&reg, nullptr) != CM_OK || cm_cache_open(&c, reg, "b", uri.c_str()) != CM_OK)
    die(std::string("open: ") + cm_errmsg());

  const int keys = 10000;
  const std::string value(100, 'v');
  std::vector<std::string> k(keys), wire(keys);
  std::vector<int> at(keys);
  for (int i = 0; i < keys; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "key:%012d", i);
    k[i] = buf;
    wire[i] = "cachemeter:b:" + k[i];
    if (cm_cache_set(c, k[i].data(), k[i].size(), value.data(), value.size(), 0) != CM_OK)
      die(std::string("set: ") + cm_errmsg());
    at[i] = owner[std::atoi(raw[ports[0]]->text({"CLUSTER", "KEYSLOT", wire[i]}).c_str())];
  }
  const std::string stored = std::string(20, 'h') + value;  // the header + value our backend writes

  const int rounds = 100000;
  for (const char* op : {"get", "set"}) {
    double raw_us = 0, ours_us = 0;
    const bool get = std::strcmp(op, "get") == 0;
    for (int i = 0; i < rounds; ++i) {
      int j = (i * 7919) % keys;
      for (int side = 0; side < 2; ++side) {
        bool ours = (side == 0) == (i % 2 == 0);
        auto t0 = Clock::now();
        if (ours) {
          if (get) {
            void* v = nullptr;
            size_t n = 0;
            if (cm_cache_get(c, k[j].data(), k[j].size(), &v, &n) != CM_OK) die(std::string("get: ") + cm_errmsg());
            cm_free(v);
          } else if (cm_cache_set(c, k[j].data(), k[j].size(), value.data(), value.size(), 0) != CM_OK) {
            die(std::string("set: ") + cm_errmsg());
          }
          ours_us += us_since(t0);
        } else {
          redisReply* r = get ? raw[at[j]]->cmd({"GET", wire[j] + ":raw"}) : raw[at[j]]->cmd({"SET", wire[j] + ":raw", stored});
          freeReplyObject(r);
          raw_us += us_since(t0);
        }
      }
    }
    std::printf("%s: raw hiredis %.2f us/op, redis+cluster:// %.2f us/op, ours/raw throughput %.3f (%d ops each)\n",
                op, raw_us / rounds, ours_us / rounds, raw_us / ours_us, rounds);
  }

  // The first call after a MOVED: move slots of known keys by hand.
  std::vector<double> first, next;
  for (int i = 0, moved = 0; i < keys && moved < 30; i += 97, ++moved) {
    int slot = std::atoi(raw[ports[0]]->text({"CLUSTER", "KEYSLOT", wire[i]}).c_str());
    int from = owner[slot], to = ports[(std::find(ports.begin(), ports.end(), from) - ports.begin() + 1) % ports.size()];
    std::string s = std::to_string(slot);
    raw[to]->text({"CLUSTER", "SETSLOT", s, "IMPORTING", id_of[from]});
    raw[from]->text({"CLUSTER", "SETSLOT", s, "MIGRATING", id_of[to]});
    for (;;) {
      redisReply* r = raw[from]->cmd({"CLUSTER", "GETKEYSINSLOT", s, "1000"});
      std::vector<std::string> ks;
      for (size_t e = 0; e < r->elements; ++e) ks.emplace_back(r->element[e]->str, r->element[e]->len);
      freeReplyObject(r);
      if (ks.empty()) break;
      std::vector<std::string> args{"MIGRATE", "127.0.0.1", std::to_string(to), "", "0", "5000", "KEYS"};
      args.insert(args.end(), ks.begin(), ks.end());
      raw[from]->text(args);
    }
    for (int p : ports) raw[p]->text({"CLUSTER", "SETSLOT", s, "NODE", id_of[to]});
    owner[static_cast<size_t>(slot)] = to;
    for (int j = 0; j < keys; ++j)
      if (at[j] == from && std::atoi(raw[ports[0]]->text({"CLUSTER", "KEYSLOT", wire[j]}).c_str()) == slot) at[j] = to;
    for (std::vector<double>* into : {&first, &next}) {
      void* v = nullptr;
      size_t n = 0;
      auto t0 = Clock::now();
      if (cm_cache_get(c, k[i].data(), k[i].size(), &v, &n) != CM_OK) die(std::string("get after MOVED: ") + cm_errmsg());
      into->push_back(us_since(t0));
      cm_free(v);
    }
  }
  std::printf("after MOVED: first get %.1f us (median of %zu), the next get %.1f us\n", median(first), first.size(),
              median(next));
  cm_cache_close(c);
  cm_registry_free(reg);
  return 0;
}
