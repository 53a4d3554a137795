#include "rpc/secret.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace tessera::rpc {
namespace {

TEST(Secret, RandomHexRoundTrip) {
  const Secret a = make_secret(), b = make_secret();
  EXPECT_NE(a, b);
  const std::string hex = secret_to_hex(a);
  EXPECT_EQ(hex.size(), 64u);
  EXPECT_EQ(secret_from_hex(hex), a);
}

TEST(Secret, FromHexRejectsBadInput) {
  EXPECT_THROW(secret_from_hex("abc"), Error);
  EXPECT_THROW(secret_from_hex(std::string(63, '0') + "g"), Error);
  EXPECT_EQ(secret_from_hex(std::string(64, 'F'))[31], 0xff);
}

TEST(Secret, EqualComparesLengthAndBytes) {
  const Secret a = make_secret();
  Secret b = a;
  EXPECT_TRUE(secret_equal(a, b));
  b[31] ^= 1;
  EXPECT_FALSE(secret_equal(a, b));
  EXPECT_FALSE(secret_equal(a, std::span<const uint8_t>(a.data(), 31)));
  EXPECT_TRUE(secret_equal({}, {}));
}

}  // namespace
}  // namespace tessera::rpc
