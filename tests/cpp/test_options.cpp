// SPDX-License-Identifier: Apache-2.0
// Option-string parsing: decoding, errors, typed getters.
#include <gtest/gtest.h>

#include "core/error.h"
#include "util/options.h"

using cm::Options;

TEST(Options, EmptyAndNull) {
  EXPECT_TRUE(Options::parse(nullptr, "t").items().empty());
  EXPECT_TRUE(Options::parse("", "t").items().empty());
  EXPECT_TRUE(Options::parse("&&", "t").items().empty());
}

TEST(Options, DecodesValuesAndKeepsRaw) {
  Options o = Options::parse("a=1&b=x%26y%3Dz&c=", "t");
  EXPECT_EQ(o.get("a", "?"), "1");
  EXPECT_EQ(o.get("b", "?"), "x&y=z");
  EXPECT_EQ(o.get_raw("b"), "x%26y%3Dz");
  EXPECT_TRUE(o.has("c"));
  EXPECT_EQ(o.get("c", "?"), "");
  EXPECT_EQ(o.get("zz", "fallback"), "fallback");
}

static int status_of(const char* text) {
  try {
    Options::parse(text, "t");
  } catch (const cm::Error& e) {
    return e.status();
  }
  return CM_OK;
}

TEST(Options, RejectsMalformed) {
  EXPECT_EQ(status_of("novalue"), CM_EINVAL);
  EXPECT_EQ(status_of("=x"), CM_EINVAL);
  EXPECT_EQ(status_of("a=%2"), CM_EINVAL);
  EXPECT_EQ(status_of("a=%zz"), CM_EINVAL);
  EXPECT_EQ(status_of("a=%00"), CM_EINVAL);
  EXPECT_EQ(status_of("a=1&a=2"), CM_EINVAL);
}

TEST(Options, UnknownKeyIsNamed) {
  Options o = Options::parse("good=1&bogus=2", "my options");
  try {
    o.check_known({"good"});
    FAIL() << "unknown key accepted";
  } catch (const cm::Error& e) {
    EXPECT_EQ(e.status(), CM_EINVAL);
    EXPECT_NE(std::string(e.what()).find("\"bogus\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("my options"), std::string::npos) << e.what();
  }
}

TEST(Options, IntegersAndBooleans) {
  Options o = Options::parse("n=42&neg=-3&big=99999999999&bad=4x&t=true&f=off&junk=maybe", "t");
  EXPECT_EQ(o.get_int("n", 0, 0, 100), 42);
  EXPECT_EQ(o.get_int("missing", 7, 0, 100), 7);
  EXPECT_THROW(o.get_int("neg", 0, 0, 100), cm::Error);
  EXPECT_THROW(o.get_int("big", 0, 0, 100), cm::Error);
  EXPECT_THROW(o.get_int("bad", 0, 0, 100), cm::Error);
  EXPECT_TRUE(o.get_bool("t", false));
  EXPECT_FALSE(o.get_bool("f", true));
  EXPECT_THROW(o.get_bool("junk", false), cm::Error);
}

TEST(Options, Split) {
  auto parts = cm::split("a,,b", ',');
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], "a");
  EXPECT_EQ(parts[1], "");
  EXPECT_EQ(parts[2], "b");
}
