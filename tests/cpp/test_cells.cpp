// SPDX-License-Identifier: Apache-2.0
// Per-thread cells: folding, generations, slot reuse, thread exit.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "metrics/cells.h"

using namespace cm::cells;

namespace {

struct Attached {
  explicit Attached(uint32_t payload, uint32_t ndoubles = 1) { Space::get().attach(b, payload, ndoubles); }
  ~Attached() { Space::get().detach(b); }
  std::vector<uint64_t> read() {
    std::vector<uint64_t> out(b.width - 1);
    auto lk = Space::get().lock();
    Space::get().read(b, out.data(), lk);
    return out;
  }
  double value() { return from_bits(read()[0]); }
  Block b;
};

}  // namespace

TEST(Cells, StartsAtZeroAndAdds) {
  Attached a(1);
  EXPECT_EQ(a.value(), 0.0);
  add_double(a.b, 0, 2.5);
  add_double(a.b, 0, 1);
  EXPECT_EQ(a.value(), 3.5);
}

TEST(Cells, ThreadsThatExitKeepTheirCounts) {
  Attached a(1);
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) add_double(a.b, 0, 1);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(a.value(), 8000.0);  // every arena was retired and folded into the base
}

TEST(Cells, ResetMakesEveryCellStale) {
  Attached a(1);
  std::thread other([&] { add_double(a.b, 0, 100); });
  other.join();
  add_double(a.b, 0, 5);
  {
    auto lk = Space::get().lock();
    uint64_t seven = to_bits(7);
    Space::get().reset(a.b, &seven, lk);  // what a gauge set does
  }
  EXPECT_EQ(a.value(), 7.0);
  add_double(a.b, 0, 1);  // this thread's cell restarts from the new generation
  EXPECT_EQ(a.value(), 8.0);
  {
    auto lk = Space::get().lock();
    Space::get().reset(a.b, nullptr, lk);
  }
  EXPECT_EQ(a.value(), 0.0);
}

TEST(Cells, HistogramPayloadMixesDoublesAndCounts) {
  Attached a(4);  // sum + 3 bucket counts
  observe(a.b, 1, 0.5);
  observe(a.b, 3, 10);
  observe(a.b, 3, 20);
  auto p = a.read();
  EXPECT_EQ(from_bits(p[0]), 30.5);
  EXPECT_EQ(p[1], 1u);
  EXPECT_EQ(p[2], 0u);
  EXPECT_EQ(p[3], 2u);
}

TEST(Cells, ReusedSlotsStartFromZero) {
  uint32_t slot;
  {
    Attached a(3);
    slot = a.b.slot;
    observe(a.b, 1, 4);  // leaves non-zero words in this thread's arena
  }
  Attached again(3);  // same width: takes the freed slot
  EXPECT_EQ(again.b.slot, slot);
  for (uint64_t w : again.read()) EXPECT_EQ(w, 0u);
}

TEST(Cells, BlocksNeverStraddleChunks) {
  std::vector<std::unique_ptr<Attached>> blocks;
  for (int i = 0; i < 20; ++i) {
    blocks.push_back(std::make_unique<Attached>(1001 - i));
    const Block& b = blocks.back()->b;
    EXPECT_LE((b.slot & kChunkMask) + b.width, kChunkWords) << "slot " << b.slot;
  }
  for (auto& a : blocks) {
    add_double(a->b, 0, 1);
    EXPECT_EQ(a->value(), 1.0);
  }
}

namespace {
Block* g_late_block = nullptr;
struct LateWriter {
  ~LateWriter() { add_double(*g_late_block, 0, 2); }  // runs after the exit hook
};
thread_local LateWriter t_late;
}  // namespace

TEST(Cells, UpdatesAfterTheExitHookFoldDirectly) {
  Attached a(1);
  g_late_block = &a.b;
  std::thread t([&] {
    (void)&t_late;           // constructed first, so destroyed last
    add_double(a.b, 0, 1);   // creates the arena and the exit hook
  });
  t.join();
  EXPECT_EQ(a.value(), 3.0);
}

// Counters and gauges: integral increments go to the integer word, the rest
// to the double word; the value is their sum.
TEST(Cells, ScalarSplitsIntegralAndFractionalIncrements) {
  Attached a(kScalarWords);
  add_scalar(a.b, 1);
  add_scalar(a.b, 0.5);
  add_scalar(a.b, 41);
  add_scalar(a.b, 0.25);
  std::vector<uint64_t> p = a.read();
  EXPECT_EQ(static_cast<int64_t>(p[1]), 42);
  EXPECT_EQ(from_bits(p[0]), 0.75);
  EXPECT_EQ(scalar_value(p.data()), 42.75);
}

TEST(Cells, ScalarNegativeAndHugeIncrements) {
  Attached a(kScalarWords);
  add_scalar(a.b, -3);  // a gauge going down: two's complement in the integer word
  add_scalar(a.b, 1);
  EXPECT_EQ(scalar_value(a.read().data()), -2.0);
  add_scalar(a.b, 1e300);  // beyond 2^53: the double word
  std::vector<uint64_t> p = a.read();
  EXPECT_EQ(static_cast<int64_t>(p[1]), -2);
  EXPECT_EQ(from_bits(p[0]), 1e300);
  add_scalar(a.b, -1e300);
  EXPECT_EQ(scalar_value(a.read().data()), -2.0);
}

TEST(Cells, ScalarKeepsNegativeZeroAndFoldsAcrossThreads) {
  Attached a(kScalarWords);
  {
    auto lk = Space::get().lock();
    uint64_t base[kScalarWords] = {to_bits(-0.0), 0};
    Space::get().reset(a.b, base, lk);
  }
  EXPECT_TRUE(std::signbit(scalar_value(a.read().data())));
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) add_scalar(a.b, i % 2 ? 1.0 : 0.5);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(scalar_value(a.read().data()), 4 * (500 * 1.0 + 500 * 0.5));
}
