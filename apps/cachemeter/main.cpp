// SPDX-License-Identifier: Apache-2.0
// cachemeter: the command-line program.
//   cachemeter demo [--seconds N] [--threads N] [--keys N] [--zipf S] [--uri URI]
//   cachemeter dump [--from ADDR] [--token T] [--format prometheus|openmetrics|json]
//   cachemeter dump --db FILE [--format prometheus|openmetrics|json]
//   cachemeter dump --demo [demo options] [--format prometheus|openmetrics|json]
//   cachemeter dump --shared DIR [--format prometheus|openmetrics|json]
//   cachemeter serve --shared DIR [--listen ADDR]
// Uses the public C API only (cachemeter/cachemeter.h), like any user.
#include <cachemeter/cachemeter.h>

#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <mutex>
#include <thread>
#include <vector>

namespace {

struct Args {
  double seconds = 5;
  int threads = 4;
  long keys = 100000;
  double zipf = 1.0;
  std::string uri;  // empty: each demo cache's own memory:// URI
  std::string format = "prometheus";
  bool quiet = false;
  std::string listen = "127.0.0.1:9464";  // empty: no HTTP endpoint
  bool listen_given = false;              // --listen on the command line
  std::string db;                         // dump --db: a persisted metrics file
  std::string shared;                     // --shared DIR: a shared metrics directory
  std::vector<std::string> exporters;     // --statsd URI, --push URI: exporters to run
  bool linger = false;                    // --linger: keep serving until stdin closes
  bool demo_dump = false;                 // dump --demo: run a workload and print it
  bool workload_given = false;            // --seconds/--threads/--keys/--zipf/--uri given
  std::string from;                       // dump --from ADDR: a running endpoint
  std::string token;                      // dump --token T
};

const char* kDemoHelp =
    "usage: cachemeter demo [options]\n"
    "\n"
    "Opens three named caches (users, sessions, pages), drives a Zipf-distributed\n"
    "workload through them from several threads (get_or_load with a slow loader,\n"
    "get + set, a few deletes), shows live progress on a terminal and ends with a\n"
    "summary per cache.\n"
    "\n"
    "options:\n"
    "  --seconds N   how long to run (default 5; 0.1 .. 3600)\n"
    "  --threads N   worker threads (default 4; 1 .. 256)\n"
    "  --keys N      size of the key space (default 100000; 10 .. 100000000)\n"
    "  --zipf S      Zipf exponent of the key popularity (default 1.0; 0 .. 3)\n"
    "  --uri URI     open every cache over URI instead of its own memory:// URI\n"
    "  --shared DIR  count into the shared metrics directory DIR as one worker of\n"
    "                a pool (docs/multiprocess.md); run it several times at once\n"
    "  --listen ADDR serve /metrics, /metrics.json and /health on ADDR while it\n"
    "                runs (default 127.0.0.1:9464; port 0 picks one; \"off\": none)\n"
    "  --statsd URI  push the metrics to StatsD/DogStatsD while it runs\n"
    "                (statsd://host:port?..., statsd+unix:///path; docs/exporters.md)\n"
    "  --push URI    push them to a Pushgateway (pushgateway://host:port/metrics/job/J)\n"
    "  --linger      after the summary, flush the exporters, print \"lingering\" and\n"
    "                keep the endpoint up until standard input reaches end of file\n"
    "  --quiet       no progress line\n"
    "  -h, --help    this text\n";

const char* kDumpHelp =
    "usage: cachemeter dump [--from ADDR] [--token T] [--format prometheus|openmetrics|json]\n"
    "       cachemeter dump --db FILE [--format prometheus|openmetrics|json]\n"
    "       cachemeter dump --shared DIR [--format prometheus|openmetrics|json]\n"
    "       cachemeter dump --demo [demo options] [--format prometheus|openmetrics|json]\n"
    "\n"
    "By default, or with --from ADDR (host:port, default 127.0.0.1:9464, the\n"
    "demo's), prints what a running endpoint serves: /metrics (OpenMetrics with\n"
    "--format openmetrics) or /metrics.json, over plain HTTP; --token T sends\n"
    "Authorization: Bearer T.\n"
    "\n"
    "With --shared, prints the aggregate of every worker of the shared metrics\n"
    "directory DIR (docs/multiprocess.md), read-only: no slot is claimed.\n"
    "\n"
    "With --db, prints the metrics saved in FILE by cm_registry_persist(): the\n"
    "file is opened read-only and no lock is taken, so it works while the\n"
    "owning program runs (it shows that program's last completed flush).\n"
    "\n"
    "With --demo, runs the demo workload (default 1 second, no progress line) and\n"
    "prints the registry it filled, in the chosen format (default prometheus).\n";

const char* kServeHelp =
    "usage: cachemeter serve --shared DIR [--listen ADDR]\n"
    "\n"
    "Serves the aggregate of every worker of the shared metrics directory DIR\n"
    "(docs/multiprocess.md) on /metrics, /metrics.json and /health: a sidecar\n"
    "for a pool of worker processes. Read-only: it claims no worker slot.\n"
    "Runs until SIGINT or SIGTERM.\n"
    "\n"
    "options:\n"
    "  --shared DIR  the directory the workers' registries were made with\n"
    "  --listen ADDR address to serve on (default 127.0.0.1:9464; port 0 picks one)\n"
    "  -h, --help    this text\n";

const char* kMainHelp =
    "usage: cachemeter <command> [options]\n"
    "\n"
    "commands:\n"
    "  demo   run a workload over named caches and summarise it\n"
    "  dump   run a short workload and print its metrics registry\n"
    "  serve  serve a shared metrics directory's aggregate over HTTP\n"
    "\n"
    "cachemeter <command> --help for a command's options.\n";

[[noreturn]] void usage_error(const std::string& msg, const char* help) {
  std::fprintf(stderr, "cachemeter: %s\n\n%s", msg.c_str(), help);
  std::exit(2);
}

double parse_number(const char* opt, const char* text, double lo, double hi, const char* help) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text, &end);
  if (!*text || *end || errno || !(v >= lo && v <= hi)) {
    char range[64];
    std::snprintf(range, sizeof range, "[%g, %g]", lo, hi);  // 1 and 256, not 1.000000
    usage_error(std::string(opt) + " needs a number in " + range + ", got \"" + text + "\"", help);
  }
  return v;
}

// --listen's syntax (host:port, [v6]:port or :port, port 0..65535), checked
// before anything runs; whether the address can be bound is the server's.
bool valid_listen(const std::string& l) {
  size_t colon = l.rfind(':');
  if (colon == std::string::npos || colon + 1 == l.size()) return false;
  std::string host = l.substr(0, colon), port = l.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
    return false;
  if (!host.empty() && host.front() == '[') return host.size() > 2 && host.back() == ']';
  return host.find(':') == std::string::npos;
}

enum class Cmd { Demo, Dump, Serve };

Args parse_args(int argc, char** argv, int first, Cmd cmd) {
  Args a;
  bool dump = cmd == Cmd::Dump;
  bool serve = cmd == Cmd::Serve;
  const char* help = serve ? kServeHelp : dump ? kDumpHelp : kDemoHelp;
  if (dump) {
    a.seconds = 1;
    a.quiet = true;
    a.listen.clear();
  }
  for (int i = first; i < argc; ++i) {
    std::string o = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(o + " needs a value", help);
      return argv[++i];
    };
    if (o == "-h" || o == "--help") {
      std::fputs(help, stdout);
      std::exit(0);
    } else if (serve && o != "--shared" && o != "--listen") {
      usage_error("unknown option \"" + o + "\"", help);
    } else if (o == "--shared") {
      a.shared = value();
      if (a.shared.empty()) usage_error("--shared needs a directory", help);
    } else if (o == "--seconds") {
      a.workload_given = true;
      a.seconds = parse_number("--seconds", value(), 0.1, 3600, help);
    } else if (o == "--threads") {
      a.workload_given = true;
      a.threads = static_cast<int>(parse_number("--threads", value(), 1, 256, help));
    } else if (o == "--keys") {
      a.workload_given = true;
      a.keys = static_cast<long>(parse_number("--keys", value(), 10, 1e8, help));
    } else if (o == "--zipf") {
      a.workload_given = true;
      a.zipf = parse_number("--zipf", value(), 0, 3, help);
    } else if (o == "--uri") {
      a.workload_given = true;
      a.uri = value();
    } else if ((!dump || serve) && o == "--listen") {
      a.listen = value();
      a.listen_given = true;
      if (a.listen == "off")
        a.listen.clear();
      else if (!valid_listen(a.listen))
        usage_error("--listen needs host:port, [v6]:port, :port or off, got \"" + a.listen + "\"", help);
    } else if (!dump && o == "--statsd") {
      std::string u = value();
      if (u.rfind("statsd", 0) != 0) usage_error("--statsd needs a statsd:// or statsd+unix:// URI", help);
      a.exporters.push_back(u);
    } else if (!dump && o == "--push") {
      std::string u = value();
      if (u.rfind("pushgateway", 0) != 0) usage_error("--push needs a pushgateway:// URI", help);
      a.exporters.push_back(u);
    } else if (!dump && o == "--linger") {
      a.linger = true;
    } else if (o == "--quiet") {
      a.quiet = true;
    } else if (dump && o == "--demo") {
      a.demo_dump = true;
    } else if (dump && o == "--from") {
      a.from = value();
      if (!valid_listen(a.from)) usage_error("--from needs host:port, got \"" + a.from + "\"", help);
    } else if (dump && o == "--token") {
      a.token = value();
    } else if (dump && o == "--db") {
      a.db = value();
    } else if (dump && o == "--format") {
      a.format = value();
      if (a.format != "prometheus" && a.format != "openmetrics" && a.format != "json")
        usage_error("--format must be prometheus, openmetrics or json, got \"" + a.format + "\"", help);
    } else {
      usage_error("unknown option \"" + o + "\"", help);
    }
  }
  if (serve && a.shared.empty()) usage_error("serve needs --shared DIR", help);
  if (dump && (!a.shared.empty()) + (!a.db.empty()) + a.demo_dump + (!a.from.empty()) > 1)
    usage_error("--from, --db, --shared and --demo exclude each other", help);
  if (dump && !a.demo_dump && a.workload_given)
    usage_error("the demo options (--seconds, --threads, --keys, --zipf, --uri) go with --demo", help);
  return a;
}

// DIR as a registry option value: '%', '&' and '=' percent-encoded.
std::string shared_option(const std::string& dir) {
  std::string out = "shared=";
  for (char c : dir) {
    if (c == '%' || c == '&' || c == '=') {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", static_cast<unsigned char>(c));
      out += b;
    } else {
      out += c;
    }
  }
  return out;
}

// Zipf(s) over [0, n): the CDF once, then a binary search per draw.
class Zipf {
 public:
  Zipf(long n, double s) : cdf_(static_cast<size_t>(n)) {
    double sum = 0;
    for (long i = 0; i < n; ++i) cdf_[static_cast<size_t>(i)] = sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
    for (double& c : cdf_) c /= sum;
  }
  long operator()(std::mt19937_64& rng) const {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<long>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

struct DemoCache {
  const char* name;
  const char* uri;
  int weight;          // share of the operations
  size_t value_bytes;  // size of the values its loader produces
  cm_cache* cache = nullptr;
  std::atomic<uint64_t> ops{0};
};

// The "slow" loader: what a database round trip would be. It builds a value
// of the cache's size and takes ~200 us.
int slow_loader(void* ctx, const void* key, size_t klen, void** val, size_t* vlen) {
  auto* dc = static_cast<DemoCache*>(ctx);
  std::this_thread::sleep_for(std::chrono::microseconds(200));
  char* p = static_cast<char*>(cm_alloc(dc->value_bytes));
  if (!p) return CM_ENOMEM;
  for (size_t i = 0; i < dc->value_bytes; ++i) p[i] = static_cast<const char*>(key)[i % klen];
  *val = p;
  *vlen = dc->value_bytes;
  return CM_OK;
}

void die(const char* what, int rc) {
  std::fprintf(stderr, "cachemeter: %s: %s (%s): %s\n", what, cm_status_name(rc), cm_strerror(rc), cm_errmsg());
  std::exit(1);
}

// A number from the flat stats JSON: the value after "key": (first match
// after `after`, when given). NaN for null or absent.
double json_number(const char* json, const char* key, const char* after = nullptr) {
  const char* p = json;
  if (after) {
    p = std::strstr(json, after);
    if (!p) return NAN;
  }
  std::string k = std::string("\"") + key + "\":";
  p = std::strstr(p, k.c_str());
  if (!p) return NAN;
  p += k.size();
  if (std::strncmp(p, "null", 4) == 0) return NAN;
  return std::strtod(p, nullptr);
}

std::string fmt_seconds(double s) {
  char b[32];
  if (std::isnan(s)) return "-";
  if (s < 1e-3)
    std::snprintf(b, sizeof b, "%.1f us", s * 1e6);
  else if (s < 1)
    std::snprintf(b, sizeof b, "%.2f ms", s * 1e3);
  else
    std::snprintf(b, sizeof b, "%.2f s", s);
  return b;
}

struct Run {
  cm_registry* reg = nullptr;
  cm_server* server = nullptr;
  std::vector<DemoCache*> caches;
  std::vector<cm_exporter*> exporters;
  uint64_t total_ops = 0;
  uint64_t failed_ops = 0;
  std::string last_error;  // a worker's cm_errmsg(), carried to the main thread
  double elapsed = 0;
};

// "host:port" of the endpoint listening on listen ("127.0.0.1" for ":port").
std::string endpoint_address(const std::string& listen, int port) {
  std::string host = listen.rfind(':') == 0 ? "127.0.0.1" : listen.substr(0, listen.rfind(':'));
  return host + ":" + std::to_string(port);
}

Run run_workload(const Args& a) {
  Run run;
  std::string opts = "const_labels=app:cachemeter_demo";
  if (!a.shared.empty()) opts += "&" + shared_option(a.shared);
  int rc = cm_registry_new(&run.reg, opts.c_str());
  if (rc != CM_OK) die("cm_registry_new", rc);
  static DemoCache defs[] = {
      {"users", "memory://?max_entries=5000&ttl_ms=60000", 5, 64},
      {"sessions", "memory://?max_entries=20000&ttl_ms=2000&stale_ms=1000", 3, 256},
      {"pages", "memory://?max_bytes=8MiB&ttl_ms=30000&max_entry_bytes=64KiB", 2, 4096},
  };
  for (DemoCache& d : defs) {
    rc = cm_cache_open(&d.cache, run.reg, d.name, a.uri.empty() ? d.uri : a.uri.c_str());
    if (rc != CM_OK) die((std::string("opening cache ") + d.name).c_str(), rc);
    run.caches.push_back(&d);
  }
  if (!a.listen.empty()) {
    rc = cm_server_start(&run.server, run.reg, a.listen.c_str(), nullptr);
    // The default endpoint is a convenience: a busy port or a build without
    // HTTP warns and the demo goes on. One asked for with --listen must work.
    if (rc != CM_OK && a.listen_given)
      die("starting the HTTP endpoint (--listen ADDR to move it, --listen off for none)", rc);
    if (rc != CM_OK)
      std::fprintf(stderr, "cachemeter: no HTTP endpoint on %s (%s: %s); going on without it\n", a.listen.c_str(),
                   cm_status_name(rc), cm_errmsg());
  }
  if (run.server) {
    std::printf("serving http://%s/metrics  /metrics.json  /health\n",
                endpoint_address(a.listen, cm_server_port(run.server)).c_str());
    std::fflush(stdout);
  }
  for (const std::string& u : a.exporters) {
    cm_exporter* e = nullptr;
    rc = cm_exporter_start(&e, run.reg, u.c_str());
    if (rc != CM_OK) die(("starting the exporter " + u).c_str(), rc);
    run.exporters.push_back(e);
  }
  int total_weight = 0;
  for (DemoCache* d : run.caches) total_weight += d->weight;

  Zipf zipf(a.keys, a.zipf);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> failures{0};
  std::mutex error_mu;  // the failure path only
  auto worker = [&](int t) {
    std::mt19937_64 rng(0x5eed + static_cast<uint64_t>(t));
    char key[32];
    while (!stop.load(std::memory_order_relaxed)) {
      int w = static_cast<int>(rng() % static_cast<uint64_t>(total_weight));
      DemoCache* d = run.caches.back();
      for (DemoCache* c : run.caches) {
        if (w < c->weight) {
          d = c;
          break;
        }
        w -= c->weight;
      }
      int klen = std::snprintf(key, sizeof key, "%s:%ld", d->name, zipf(rng));
      unsigned roll = static_cast<unsigned>(rng() % 100);
      void* v = nullptr;
      size_t n = 0;
      int r;
      if (roll < 80) {
        r = cm_cache_get_or_load(d->cache, key, static_cast<size_t>(klen), slow_loader, d, 0, &v, &n);
      } else if (roll < 97) {
        r = cm_cache_get(d->cache, key, static_cast<size_t>(klen), &v, &n);
        if (r == CM_MISS) {
          std::string val(d->value_bytes, 'x');
          r = cm_cache_set(d->cache, key, static_cast<size_t>(klen), val.data(), val.size(), 0);
        }
      } else {
        r = cm_cache_delete(d->cache, key, static_cast<size_t>(klen));
        if (r == CM_MISS) r = CM_OK;
      }
      cm_free(v);
      if (r < 0) {
        failures.fetch_add(1, std::memory_order_relaxed);
        // cm_errmsg() is this worker thread's: copy it out for the summary.
        std::lock_guard<std::mutex> g(error_mu);
        run.last_error = std::string(cm_status_name(r)) + ": " + cm_errmsg();
      }
      d->ops.fetch_add(1, std::memory_order_relaxed);
    }
  };

  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < a.threads; ++t) ts.emplace_back(worker, t);
  bool tty = !a.quiet && isatty(STDOUT_FILENO);
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  uint64_t last_ops = 0;
  double last_t = 0;
  while (elapsed() < a.seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 50));
    if (!tty) continue;
    uint64_t ops = 0;
    double hits = 0, lookups = 0;
    for (DemoCache* d : run.caches) {
      ops += d->ops.load(std::memory_order_relaxed);
      char* js = nullptr;
      if (cm_cache_stats_json(d->cache, &js) == CM_OK) {
        double h = json_number(js, "hits"), m = json_number(js, "misses");
        hits += h;
        lookups += h + m;
      }
      cm_free(js);
    }
    double now = elapsed();
    double rate = now > last_t ? static_cast<double>(ops - last_ops) / (now - last_t) : 0;
    std::printf("\r[%5.1fs] %12llu ops  %10.0f ops/s  hit ratio %5.1f%%   ", now,
                static_cast<unsigned long long>(ops), rate, lookups > 0 ? 100 * hits / lookups : 0.0);
    std::fflush(stdout);
    last_ops = ops;
    last_t = now;
  }
  stop = true;
  for (auto& t : ts) t.join();
  run.elapsed = elapsed();
  if (tty) std::printf("\n");
  for (DemoCache* d : run.caches) run.total_ops += d->ops.load();
  run.failed_ops = failures.load();
  if (run.failed_ops)
    std::fprintf(stderr, "cachemeter: %llu of %llu operations failed (last error: %s)\n",
                 static_cast<unsigned long long>(run.failed_ops), static_cast<unsigned long long>(run.total_ops),
                 run.last_error.c_str());
  return run;
}

void close_run(Run& run) {
  // The exporters first, while the caches' series exist: their final push
  // carries the run's last values (a closed cache's series leave the registry).
  for (cm_exporter* e : run.exporters) cm_exporter_stop(e);
  run.exporters.clear();
  cm_server_stop(run.server);
  run.server = nullptr;
  for (DemoCache* d : run.caches) {
    cm_cache_close(d->cache);
    d->cache = nullptr;
    d->ops = 0;
  }
  cm_registry_free(run.reg);
}

int demo(const Args& a) {
  std::printf("cachemeter %s demo: %d threads, %.1f s, %ld keys, Zipf(%.2f)%s%s\n", cm_version(), a.threads,
              a.seconds, a.keys, a.zipf, a.uri.empty() ? "" : ", every cache on ", a.uri.c_str());
  Run run = run_workload(a);
  std::printf("\n%-9s %11s %9s %10s %10s %10s %10s %10s %10s\n", "cache", "ops", "hit ratio", "get p50", "get p99",
              "load p50", "load p99", "evicted", "entries");
  for (DemoCache* d : run.caches) {
    char* js = nullptr;
    int rc = cm_cache_stats_json(d->cache, &js);
    if (rc != CM_OK) die("cm_cache_stats_json", rc);
    double ratio = json_number(js, "hit_ratio");
    double evicted = json_number(js, "size", "\"evictions\"") + json_number(js, "expired", "\"evictions\"");
    char ratio_s[16] = "-";
    if (!std::isnan(ratio)) std::snprintf(ratio_s, sizeof ratio_s, "%.1f%%", 100 * ratio);
    std::printf("%-9s %11llu %9s %10s %10s %10s %10s %10.0f %10.0f\n", d->name,
                static_cast<unsigned long long>(d->ops.load()), ratio_s,
                fmt_seconds(json_number(js, "p50", "\"get\"")).c_str(),
                fmt_seconds(json_number(js, "p99", "\"get\"")).c_str(),
                fmt_seconds(json_number(js, "p50", "\"load\"")).c_str(),
                fmt_seconds(json_number(js, "p99", "\"load\"")).c_str(), evicted, json_number(js, "entries"));
    cm_free(js);
  }
  const uint64_t ok_ops = run.total_ops - run.failed_ops;
  std::printf("\n%llu operations in %.2f s: %.0f ops/s", static_cast<unsigned long long>(ok_ops), run.elapsed,
              static_cast<double>(ok_ops) / run.elapsed);
  if (run.failed_ops) std::printf(" (and %llu failed)", static_cast<unsigned long long>(run.failed_ops));
  std::printf("\n");
  // Nothing worked (a dead backend, say): a failed run, with the reason.
  if (ok_ops == 0) {
    std::fprintf(stderr, "cachemeter: every operation failed: %s\n",
                 run.last_error.empty() ? "no operation ran" : run.last_error.c_str());
    close_run(run);
    return 1;
  }
  // What is true of this run: its endpoint has its metrics while it is up;
  // `dump` runs a workload of its own.
  if (run.server && !a.linger)
    std::printf("the metrics of this run were on http://%s/metrics while it ran; with --linger, "
                "cachemeter dump --from %s prints them\n",
                endpoint_address(a.listen, cm_server_port(run.server)).c_str(),
                endpoint_address(a.listen, cm_server_port(run.server)).c_str());
  else if (!run.server)
    std::printf("metrics: --listen ADDR serves them while it runs; cachemeter dump --demo prints those of a short run\n");
  if (a.linger) {
    // Every outlet gets the final values now: the endpoint, StatsD and the
    // Pushgateway agree until this process ends.
    for (cm_exporter* e : run.exporters) {
      int rc = cm_exporter_flush(e);
      if (rc != CM_OK) std::fprintf(stderr, "cachemeter: exporter flush: %s: %s\n", cm_status_name(rc), cm_errmsg());
    }
    std::printf("lingering: the endpoint stays up until standard input closes\n");
    std::fflush(stdout);
    char buf[256];
    while (std::fread(buf, 1, sizeof buf, stdin) > 0) {
    }
  }
  close_run(run);
  return 0;
}

// Writes reg's exposition in format to stdout (exits on failure).
void print_render(cm_registry* reg, int format) {
  char* text = nullptr;
  size_t len = 0;
  int rc = cm_registry_render(reg, format, &text, &len);
  if (rc != CM_OK) die("cm_registry_render", rc);
  std::fwrite(text, 1, len, stdout);
  cm_free(text);
}

// Prints what the endpoint at addr serves (plain HTTP/1.0, one request, every
// wait bounded by 10 s); 1 with a message when it cannot.
int dump_endpoint(const std::string& addr, const std::string& token, int format) {
  size_t colon = addr.rfind(':');
  std::string host = addr.substr(0, colon), port = addr.substr(colon + 1);
  if (host.empty()) host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    std::fprintf(stderr, "cachemeter: cannot resolve %s: %s\n", host.c_str(), gai_strerror(rc));
    return 1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    std::fprintf(stderr, "cachemeter: no endpoint answers on %s (%s); is the program serving? (--listen)\n",
                 addr.c_str(), std::strerror(errno));
    return 1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string req = std::string("GET ") + (format == CM_FORMAT_JSON ? "/metrics.json" : "/metrics") +
                    " HTTP/1.0\r\nHost: " + addr + "\r\nAccept: " +
                    (format == CM_FORMAT_OPENMETRICS ? "application/openmetrics-text; version=1.0.0" : "*/*") + "\r\n" +
                    (token.empty() ? "" : "Authorization: Bearer " + token + "\r\n") + "Connection: close\r\n\r\n";
  std::string reply;
  bool ok = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  char buf[65536];
  for (ssize_t n; ok && (n = ::recv(fd, buf, sizeof buf, 0)) != 0;) {
    if (n < 0) {
      ok = false;
      break;
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t end = reply.find("\r\n\r\n");
  if (!ok || end == std::string::npos || reply.compare(0, 5, "HTTP/") != 0) {
    std::fprintf(stderr, "cachemeter: no HTTP answer from %s\n", addr.c_str());
    return 1;
  }
  std::string status = reply.substr(0, reply.find("\r\n"));
  if (status.find(" 200 ") == std::string::npos) {
    std::fprintf(stderr, "cachemeter: %s answered \"%s\"%s\n", addr.c_str(), status.c_str(),
                 status.find(" 401 ") != std::string::npos ? " (--token T?)" : "");
    return 1;
  }
  std::fwrite(reply.data() + end + 4, 1, reply.size() - end - 4, stdout);
  return 0;
}

int dump(const Args& a) {
  int format = a.format == "json" ? CM_FORMAT_JSON : a.format == "openmetrics" ? CM_FORMAT_OPENMETRICS
                                                                                : CM_FORMAT_PROMETHEUS;
  if (!a.shared.empty()) {
    // A read-only view of the directory: renders the pool, changes nothing.
    cm_registry* reg = nullptr;
    int rc = cm_registry_new(&reg, (shared_option(a.shared) + "&shared_readonly=true").c_str());
    if (rc != CM_OK) die(("reading " + a.shared).c_str(), rc);
    print_render(reg, format);
    cm_registry_free(reg);
    return 0;
  }
  if (!a.db.empty()) {
    // A throwaway registry holding the file's rows; ours to render, then free.
    cm_registry* reg = nullptr;
    int rc = cm_registry_new(&reg, "max_series=100000000");
    if (rc != CM_OK) die("cm_registry_new", rc);
    rc = cm_registry_load(reg, a.db.c_str());
    if (rc != CM_OK) die(("reading " + a.db).c_str(), rc);
    print_render(reg, format);
    cm_registry_free(reg);
    return 0;
  }
  if (a.demo_dump) {
    Run run = run_workload(a);
    print_render(run.reg, format);
    close_run(run);
    return 0;
  }
  return dump_endpoint(a.from.empty() ? "127.0.0.1:9464" : a.from, a.token, format);
}

int serve(const Args& a) {
  // SIGINT/SIGTERM end it: blocked here (the server's threads inherit the
  // mask), taken with sigwait below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  cm_registry* reg = nullptr;
  int rc = cm_registry_new(&reg, (shared_option(a.shared) + "&shared_readonly=true").c_str());
  if (rc != CM_OK) die(("reading " + a.shared).c_str(), rc);
  cm_server* server = nullptr;
  rc = cm_server_start(&server, reg, a.listen.c_str(), nullptr);
  if (rc != CM_OK) die(("serving on " + a.listen).c_str(), rc);
  std::printf("serving %s on http://%s:%d/metrics  /metrics.json  /health\n", a.shared.c_str(),
              a.listen.rfind(':') == 0 ? "127.0.0.1" : a.listen.substr(0, a.listen.rfind(':')).c_str(),
              cm_server_port(server));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  cm_server_stop(server);
  cm_registry_free(reg);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage_error("no command given", kMainHelp);
  std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kMainHelp, stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("cachemeter %s\n", cm_version());
    return 0;
  }
  if (cmd == "demo") return demo(parse_args(argc, argv, 2, Cmd::Demo));
  if (cmd == "dump") return dump(parse_args(argc, argv, 2, Cmd::Dump));
  if (cmd == "serve") return serve(parse_args(argc, argv, 2, Cmd::Serve));
  usage_error("unknown command \"" + cmd + "\"", kMainHelp);
}
