// SPDX-License-Identifier: Apache-2.0
// Number formatting, escaping and UTF-8 validation of the renderers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "util/text.h"

using cm::OutBuf;

static std::string fmt(double v) {
  char buf[40];
  return std::string(buf, cm::format_double(v, buf));
}

static std::string le(double v) {
  OutBuf b;
  b.append_le(v);
  return std::string(b.view());
}

TEST(Text, DoublesSpelledAsTheFormatsWant) {
  EXPECT_EQ(fmt(0), "0");
  EXPECT_EQ(fmt(-0.0), "-0");
  EXPECT_EQ(fmt(1), "1");
  EXPECT_EQ(fmt(0.1), "0.1");
  EXPECT_EQ(fmt(1e21), "1e+21");
  EXPECT_EQ(fmt(1e16), "1e+16");
  EXPECT_EQ(fmt(1234567890123456.0), "1234567890123456");
  EXPECT_EQ(fmt(100), "100");
  EXPECT_EQ(fmt(0.0005), "0.0005");
  EXPECT_EQ(fmt(0.0001), "0.0001");
  EXPECT_EQ(fmt(0.00001), "1e-05");
  EXPECT_EQ(fmt(-2.5e-300), "-2.5e-300");
  EXPECT_EQ(fmt(INFINITY), "+Inf");
  EXPECT_EQ(fmt(-INFINITY), "-Inf");
  EXPECT_EQ(fmt(NAN), "NaN");
  EXPECT_EQ(le(1), "1.0");
  EXPECT_EQ(le(0.25), "0.25");
  EXPECT_EQ(le(1e21), "1e+21");
  EXPECT_EQ(le(-5), "-5.0");
  EXPECT_EQ(le(100000), "100000.0");
  EXPECT_EQ(le(1e6), "1e+06");
  EXPECT_EQ(le(-1e10), "-1e+10");
  EXPECT_EQ(le(0.0001), "0.0001");
  EXPECT_EQ(le(0.00001), "1e-05");
  EXPECT_EQ(le(0), "0.0");
}

TEST(Text, DoublesRoundTripExactly) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 100000; ++i) {
    uint64_t bits = rng();
    double v;
    std::memcpy(&v, &bits, sizeof v);
    if (!std::isfinite(v)) continue;
    std::string s = fmt(v);
    double back = std::strtod(s.c_str(), nullptr);
    ASSERT_EQ(std::memcmp(&back, &v, sizeof v), 0) << s;
  }
  EXPECT_EQ(std::strtod(fmt(std::numeric_limits<double>::denorm_min()).c_str(), nullptr),
            std::numeric_limits<double>::denorm_min());
}

TEST(Text, LabelAndHelpEscaping) {
  OutBuf b;
  cm::append_label_escaped(b, "a\\b\"c\nd");
  EXPECT_EQ(b.view(), "a\\\\b\\\"c\\nd");
  b.clear();
  cm::append_help_escaped(b, "a\\b\"c\nd", false);
  EXPECT_EQ(b.view(), "a\\\\b\"c\\nd");
  b.clear();
  cm::append_help_escaped(b, "a\\b\"c\nd", true);
  EXPECT_EQ(b.view(), "a\\\\b\\\"c\\nd");
}

TEST(Text, JsonStrings) {
  OutBuf b;
  cm::append_json_string(b, std::string_view("q\"b\\n\n\t\x01 \xc3\xa9", 11));
  EXPECT_EQ(b.view(), "\"q\\\"b\\\\n\\n\\t\\u0001 \xc3\xa9\"");
}

TEST(Text, Utf8Validation) {
  EXPECT_TRUE(cm::valid_utf8(""));
  EXPECT_TRUE(cm::valid_utf8("plain"));
  EXPECT_TRUE(cm::valid_utf8("Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(cm::valid_utf8("\xff"));
  EXPECT_FALSE(cm::valid_utf8("\xc3"));               // truncated
  EXPECT_FALSE(cm::valid_utf8("\xc0\xaf"));           // overlong '/'
  EXPECT_FALSE(cm::valid_utf8("\xed\xa0\x80"));       // surrogate
  EXPECT_FALSE(cm::valid_utf8("\xf4\x90\x80\x80"));   // past U+10FFFF
  EXPECT_FALSE(cm::valid_utf8("\xe2\x28\xa1"));       // bad continuation
}

TEST(Text, OutBufGrowsAndReleases) {
  OutBuf b;
  std::string expect;
  for (int i = 0; i < 10000; ++i) {
    b.append_u64(static_cast<uint64_t>(i));
    b.push(',');
    expect += std::to_string(i) + ",";
  }
  ASSERT_EQ(b.size(), expect.size());
  char* p = b.release();
  EXPECT_EQ(std::strlen(p), expect.size());
  EXPECT_EQ(std::string(p), expect);
  std::free(p);
  EXPECT_EQ(b.size(), 0u);
}

TEST(Text, FixedLayoutMatchesPythonRepr) {
  EXPECT_EQ(fmt(-0.5), "-0.5");
  EXPECT_EQ(fmt(123.456), "123.456");
  EXPECT_EQ(fmt(0.001234), "0.001234");
  EXPECT_EQ(fmt(1e15 + 0.5), "1000000000000000.5");
  EXPECT_EQ(fmt(9007199254740993.0), "9007199254740992");
  EXPECT_EQ(fmt(1e15), "1000000000000000");
  EXPECT_EQ(fmt(-1e-7), "-1e-07");
}
