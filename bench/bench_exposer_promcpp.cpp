// SPDX-License-Identifier: Apache-2.0
// The HTTP benchmark's baseline: prometheus-cpp's Exposer (civetweb) serving
// the same bulk counter family as `cm_http_fixture --series N --writers W`,
// so bench/http_bench.sh can load both with wrk in one run.
//
// usage: exposer_promcpp [--port P] [--series N] [--writers W] [--threads T]
//   --port P     port on 127.0.0.1 (default 0: a free one)
//   --series N   fixture_bulk_total{i="0".."N-1"} (default 1000)
//   --writers W  threads adding 1 to the bulk series in a loop (default 2)
//   --threads T  civetweb worker threads (default 2, the Exposer's default)
// Prints "PORT <port>" once serving; exits 0 on "quit" or end of input.
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

long arg_long(const char* flag, const char* text, long lo, long hi) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "exposer_promcpp: %s wants %ld..%ld, got \"%s\"\n", flag, lo, hi, text);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  long port = 0, series = 1000, writers = 2, threads = 2;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "--port") == 0) {
      port = arg_long("--port", argv[++i], 0, 65535);
    } else if (i + 1 < argc && std::strcmp(argv[i], "--series") == 0) {
      series = arg_long("--series", argv[++i], 1, 10000000);
    } else if (i + 1 < argc && std::strcmp(argv[i], "--writers") == 0) {
      writers = arg_long("--writers", argv[++i], 0, 64);
    } else if (i + 1 < argc && std::strcmp(argv[i], "--threads") == 0) {
      threads = arg_long("--threads", argv[++i], 1, 64);
    } else {
      std::fprintf(stderr, "usage: exposer_promcpp [--port P] [--series N] [--writers W] [--threads T]\n");
      return 2;
    }
  }

  try {
    auto registry = std::make_shared<prometheus::Registry>();
    auto& family = prometheus::BuildCounter().Name("fixture_bulk_total").Help("Bulk series.").Register(*registry);
    std::vector<prometheus::Counter*> bulk;
    bulk.reserve(static_cast<size_t>(series));
    for (long i = 0; i < series; ++i) bulk.push_back(&family.Add({{"i", std::to_string(i)}}));

    prometheus::Exposer exposer("127.0.0.1:" + std::to_string(port), static_cast<size_t>(threads));
    exposer.RegisterCollectable(registry);

    std::atomic<bool> stopping{false};
    std::vector<std::thread> pool;
    for (long t = 0; t < writers; ++t)
      pool.emplace_back([&, t] {
        size_t i = static_cast<size_t>(t);
        while (!stopping.load(std::memory_order_relaxed)) {
          bulk[i % bulk.size()]->Increment();
          i += 7;
        }
      });

    std::vector<int> ports = exposer.GetListeningPorts();
    std::printf("PORT %d\n", ports.empty() ? static_cast<int>(port) : ports.front());
    std::fflush(stdout);

    std::string line;
    while (std::getline(std::cin, line) && line != "quit") {
    }
    stopping = true;
    for (auto& th : pool) th.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exposer_promcpp: %s\n", e.what());
    return 1;
  }
  return 0;
}
