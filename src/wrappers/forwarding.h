/* SPDX-License-Identifier: Apache-2.0 */
// The base of every wrapper (a Backend around another: the circuit breaker,
// the tiered cache): forwards every Backend virtual to the inner backend, so
// a wrapper overrides only what it changes and a virtual added to Backend
// reaches the store through every wrapper by one line here.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "cache/backend.h"

namespace cm {

class ForwardingBackend : public Backend {
 public:
  // Owns inner (non-null).
  explicit ForwardingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  std::string_view kind() const override { return inner_->kind(); }
  bool get(std::string_view key, int64_t now_ms, Fetched* out) override { return inner_->get(key, now_ms, out); }
  void set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) override {
    inner_->set(key, value, e, now_ms);
  }
  bool del(std::string_view key, int64_t now_ms) override { return inner_->del(key, now_ms); }
  void clear() override { inner_->clear(); }
  uint64_t entries() const override { return inner_->entries(); }
  uint64_t bytes() const override { return inner_->bytes(); }
  int health() override { return inner_->health(); }
  std::string share_key() const override { return inner_->share_key(); }
  bool supports_lock() const override { return inner_->supports_lock(); }
  bool follows_topology() const override { return inner_->follows_topology(); }
  bool try_lock(std::string_view key, std::string_view token, int64_t ttl_ms) override {
    return inner_->try_lock(key, token, ttl_ms);
  }
  void unlock(std::string_view key, std::string_view token) override { inner_->unlock(key, token); }
  BreakerState breaker_state() const override { return inner_->breaker_state(); }
  ChangeFeed* change_feed() override { return inner_->change_feed(); }

  Backend& inner() { return *inner_; }
  const Backend& inner() const { return *inner_; }

 protected:
  std::unique_ptr<Backend> inner_;
};

}  // namespace cm
