// SPDX-License-Identifier: Apache-2.0
// The seams a new backend plugs into: the backend table (every scheme finds
// its spec, the factories accept exactly their specs' options) and the
// abstract change feed (a tiered cache kept coherent by a store it knows
// only through ChangeFeed, behind the forwarding base).
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "backends/memory.h"
#include "cache/backend_table.h"
#include "cache/change_feed.h"
#include "core/error.h"
#include "util/clock.h"
#include "util/uri.h"
#include "wrappers/forwarding.h"
#include "wrappers/tiered.h"

namespace {

// The CM_EINVAL message of make_backend(uri).
std::string make_error(const std::string& uri) {
  try {
    cm::make_backend(cm::Uri::parse(uri.c_str()), nullptr);
  } catch (const cm::Error& e) {
    EXPECT_EQ(e.status(), CM_EINVAL) << e.what();
    return e.what();
  }
  ADD_FAILURE() << uri << " was accepted";
  return {};
}

TEST(BackendTable, EverySchemeFindsItsSpec) {
  ASSERT_FALSE(cm::backend_specs().empty());
  for (const cm::BackendSpec* s : cm::backend_specs()) {
    ASSERT_NE(s->make, nullptr) << s->name;
    EXPECT_FALSE(s->schemes.empty()) << s->name;
    EXPECT_EQ(cm::find_backend_kind(s->name), s);
    for (std::string_view scheme : s->schemes) EXPECT_EQ(cm::find_backend_spec(scheme), s) << scheme;
    // A tier is one or the other: an L1 is in-process, an L2 shared.
    EXPECT_FALSE(s->traits.tier_l1 && s->traits.tier_l2) << s->name;
    EXPECT_TRUE(!s->traits.tier_l2 || s->traits.shared) << s->name;
  }
  EXPECT_EQ(cm::find_backend_spec("nosuch"), nullptr);
  EXPECT_EQ(cm::find_backend_kind("tiered"), nullptr);  // a wrapper, not a backend
}

TEST(BackendTable, UnknownSchemeNamesEverySchemeBuiltIn) {
  std::string msg = make_error("nosuch://");
  EXPECT_NE(msg.find("unknown scheme \"nosuch\""), std::string::npos) << msg;
  for (const cm::BackendSpec* s : cm::backend_specs())
    for (std::string_view scheme : s->schemes) EXPECT_NE(msg.find(scheme), std::string::npos) << msg;
}

// The options a spec lists are the ones its factory checks (the front's on
// top): the unknown-option message lists what the factory knows. A scheme
// may know fewer (redis:// takes its db in the path, not as db=).
TEST(BackendTable, FactoriesAcceptTheirSpecsOptions) {
  for (const cm::BackendSpec* s : cm::backend_specs()) {
    std::string all;
    for (std::string_view scheme : s->schemes) {
      std::string msg = make_error(std::string(scheme) + "://?nosuch_option=1");
      EXPECT_NE(msg.find("unknown option \"nosuch_option\""), std::string::npos) << msg;
      all += msg;
    }
    for (std::string_view o : cm::known_options(*s))
      EXPECT_NE(all.find(std::string(o)), std::string::npos) << s->name << ": " << o;
  }
}

// A store with a change feed of its own that the test drives: a memory
// backend behind the forwarding base (which must forward what it does not
// override), counting the reads that reach it.
class FedStore final : public cm::ForwardingBackend, private cm::ChangeFeed {
 public:
  FedStore() : ForwardingBackend(cm::make_memory_backend(cm::Uri::parse("memory://"), nullptr)) {}

  bool get(std::string_view key, int64_t now_ms, cm::Fetched* out) override {
    ++gets;
    return ForwardingBackend::get(key, now_ms, out);
  }
  cm::ChangeFeed* change_feed() override { return this; }

  int gets = 0;
  int subscriptions = 0;
  int revivals = 0;
  bool connected = false;
  bool inherited = false;
  Callbacks cb;

 private:
  class Sub final : public Subscription {
   public:
    explicit Sub(FedStore* s) : s_(s) {}
    ~Sub() override { s_->cb = {}; }
    bool connected() const override { return s_->connected; }
    bool wait_connected(int) const override { return s_->connected; }
    bool inherited() const override { return s_->inherited; }
    void revive() override {
      s_->inherited = false;
      ++s_->revivals;
    }

   private:
    FedStore* s_;
  };

  std::unique_ptr<Subscription> subscribe(Callbacks c) override {
    cb = std::move(c);
    ++subscriptions;
    return std::make_unique<Sub>(this);
  }
};

// The value of key (nullopt on a miss) and whether L1 answered.
std::optional<std::string> read(cm::Backend& b, const char* key, bool* from_l1) {
  cm::Fetched f;
  if (!b.get(key, 0, &f)) return std::nullopt;
  std::string v(static_cast<const char*>(f.data), f.len);
  std::free(f.data);
  *from_l1 = f.from_l1;
  return v;
}

TEST(TieredFeed, L1FollowsAnAbstractChangeFeed) {
  cm::ManualClock clock;
  auto store = std::make_unique<FedStore>();
  FedStore* fed = store.get();
  cm::TieredBackend t(cm::make_memory_backend(cm::Uri::parse("memory://"), nullptr), std::move(store), {}, &clock,
                      nullptr);
  t.start_coherence();
  ASSERT_EQ(fed->subscriptions, 1);
  EXPECT_EQ(t.change_feed(), fed->change_feed());  // forwarded to L2

  t.set("k", "v1", {}, 0);
  bool l1 = false;
  // Not connected: every read goes to L2.
  EXPECT_EQ(read(t, "k", &l1), "v1");
  EXPECT_EQ(read(t, "k", &l1), "v1");
  EXPECT_FALSE(l1);
  EXPECT_EQ(fed->gets, 2);

  // Connected: the next read fills L1, which answers the one after.
  fed->connected = true;
  EXPECT_EQ(read(t, "k", &l1), "v1");
  EXPECT_EQ(read(t, "k", &l1), "v1");
  EXPECT_TRUE(l1);
  EXPECT_EQ(fed->gets, 3);

  // Someone else writes the store; its feed says so: L1 drops the key.
  fed->inner().set("k", "v2", {}, 0);
  fed->cb.invalidate("k");
  EXPECT_EQ(read(t, "k", &l1), "v2");
  EXPECT_FALSE(l1);
  EXPECT_EQ(read(t, "k", &l1), "v2");
  EXPECT_TRUE(l1);

  // A flush empties L1.
  fed->inner().set("k", "v3", {}, 0);
  fed->cb.flush();
  EXPECT_EQ(read(t, "k", &l1), "v3");
  EXPECT_FALSE(l1);

  // In a child of fork() the subscription is revived on the next use.
  fed->inherited = true;
  EXPECT_EQ(read(t, "k", &l1), "v3");
  EXPECT_EQ(fed->revivals, 1);

  // With a feed, a write drops the key from L1 (its event would anyway).
  t.set("k", "v4", {}, 0);
  const int before = fed->gets;
  EXPECT_EQ(read(t, "k", &l1), "v4");
  EXPECT_FALSE(l1);
  EXPECT_EQ(fed->gets, before + 1);

  EXPECT_EQ(t.entries(), 1u);  // L2's, through the forwarding base
}

}  // namespace
