/* SPDX-License-Identifier: Apache-2.0 */
// Trace simulation shared by the hit-ratio test (tests/cpp) and benchmark
// (bench/): a seeded Zipf key generator and the plain LRU that S3-FIFO is
// compared with.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <list>
#include <random>
#include <unordered_map>
#include <vector>

namespace cmsim {

// Zipf(alpha) over [0, n): the CDF once, a binary search per draw; seeded,
// so a trace is the same on every run.
class Zipf {
 public:
  Zipf(uint64_t n, double alpha, uint64_t seed) : rng_(seed), cdf_(n) {
    double sum = 0;
    for (uint64_t i = 0; i < n; ++i) cdf_[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), alpha);
    for (double& c : cdf_) c /= sum;
  }
  uint64_t next() {
    double u = static_cast<double>(rng_() >> 11) * 0x1p-53;
    auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return std::min<uint64_t>(static_cast<uint64_t>(it - cdf_.begin()), cdf_.size() - 1);
  }

 private:
  std::mt19937_64 rng_;
  std::vector<double> cdf_;
};

// Plain LRU of `cap` keys (std::list + hash map): access() returns whether
// the key was there, and inserts it (evicting the least recent) when not.
class Lru {
 public:
  explicit Lru(size_t cap) : cap_(cap) { map_.reserve(cap * 2); }
  bool access(uint64_t k) {
    auto it = map_.find(k);
    if (it != map_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return true;
    }
    if (map_.size() == cap_) {
      map_.erase(order_.back());
      order_.pop_back();
    }
    order_.push_front(k);
    map_[k] = order_.begin();
    return false;
  }

 private:
  size_t cap_;
  std::list<uint64_t> order_;
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> map_;
};

}  // namespace cmsim
