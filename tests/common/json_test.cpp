#include "common/json.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace tessera {
namespace {

TEST(Json, ParsesNestedDocument) {
  Json j = Json::parse(R"({"a": [1, 2.5, -3e2, true, null], "b": {"c": "x\u00e9\ud83d\ude00"}})");
  ASSERT_TRUE(j.is_object());
  const auto& a = j.at("a").as_array();
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(a[0].as_int(), 1);
  EXPECT_DOUBLE_EQ(a[1].as_double(), 2.5);
  EXPECT_DOUBLE_EQ(a[2].as_double(), -300.0);
  EXPECT_TRUE(a[3].as_bool());
  EXPECT_TRUE(a[4].is_null());
  EXPECT_EQ(j.at("b").at("c").as_string(), "x\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(Json, KeepsLargeIntegersExact) {
  Json j = Json::parse("[9007199254740993]");
  EXPECT_EQ(j.as_array()[0].as_int(), 9007199254740993LL);
}

TEST(Json, RoundTripsThroughDump) {
  const char* text = R"({"s":"a\"b\\c\n","n":[1,2.5,null],"o":{}})";
  EXPECT_EQ(Json::parse(text).dump(), text);
}

TEST(Json, ErrorsNameTheSourceAndOffset) {
  try {
    Json::parse(R"({"a": [1, 2,]})", "config.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("byte 12"), std::string::npos) << e.what();
  }
}

TEST(Json, RejectsMalformedInput) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "01", "1.", "\"\\x\"",
                          "\"\\ud800\"", "{\"a\":1}x", "-", "[\"\x01\"]"}) {
    EXPECT_THROW(Json::parse(bad), Error) << bad;
  }
}

TEST(Json, RejectsExcessiveNesting) {
  std::string deep(100000, '[');
  EXPECT_THROW(Json::parse(deep), Error);
}

TEST(Json, TypedAccessorsNameTheField) {
  Json j = Json::parse(R"({"n": "x"})");
  try {
    (void)j.at("n").as_int("n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'n'"), std::string::npos);
  }
  EXPECT_THROW((void)j.at("missing"), Error);
}

}  // namespace
}  // namespace tessera
