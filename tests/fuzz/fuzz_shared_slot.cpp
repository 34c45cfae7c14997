// SPDX-License-Identifier: Apache-2.0
// The shared metrics directory's decoders (src/metrics/shared/layout.h) on
// hostile bytes: a families file and a slot file, decoded and aggregated as
// a scrape does. Every failure must be Error(CM_ECORRUPT); nothing may crash,
// hang or allocate without bound. Input: a uint32_t length N, N bytes of
// families.cm, then the slot file (its holes past the input read as zeros).
// Seeds: make_shared_seeds.py.
#include <cstring>

#include "core/error.h"
#include "fuzz_util.h"
#include "metrics/shared/directory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cm::shared;
  if (size < 4) return 0;
  uint32_t n;
  std::memcpy(&n, data, 4);
  data += 4;
  size -= 4;
  if (n > size) n = static_cast<uint32_t>(size);
  std::vector<FamilyDef> fams;
  try {
    fams = decode_families(data, n, "families.cm");
  } catch (const cm::Error& e) {
    if (e.status() != CM_ECORRUPT) fuzz::fail("decode_families: not CM_ECORRUPT", e.what());
  }
  try {
    SlotContents c = decode_slot(data + n, size - n, "slot-000.cm");
    Aggregate agg(&fams);
    agg.add(c, true, 0);
    agg.add(c, false, 1);
    for (const auto& [k, v] : agg.series()) {
      if (k.family >= fams.size()) fuzz::fail("aggregate kept a series of an unknown family", "");
      if (v.payload.size() < 2) fuzz::fail("aggregate payload too short", "");
    }
  } catch (const cm::Error& e) {
    if (e.status() != CM_ECORRUPT) fuzz::fail("decode_slot: not CM_ECORRUPT", e.what());
  }
  return 0;
}
