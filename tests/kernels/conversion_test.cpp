// fp16/bf16 scalar conversions and quantise/dequantise round trips.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "kernels/fp16.h"
#include "kernels/ops.h"
#include "kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace tessera::kernels::test {
namespace {

TEST(Fp16, EdgeCases) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);    // max finite
  EXPECT_EQ(f32_to_f16(65519.99f), 0x7bff);   // below the midpoint to inf
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);    // tie rounds to even = inf
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(inf), 0x7c00);
  EXPECT_EQ(f32_to_f16(-inf), 0xfc00);
  const uint16_t nan = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);      // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);      // tie -> even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);      // 1.5 ulp tie -> even (2)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);      // smallest normal
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7c00), inf);
  EXPECT_EQ(f16_to_f32(0xfc00), -inf);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
}

TEST(Fp16, AllHalvesRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST(Bf16, EdgeCasesAndRoundTrip) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie -> even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to inf
  EXPECT_EQ(f32_to_bf16(std::ldexp(1.0f, -133)), 0x0001);             // subnormal kept
  const uint16_t nan = f32_to_bf16(std::bit_cast<float>(0x7f800001u));  // signalling nan
  EXPECT_TRUE(std::isnan(bf16_to_f32(nan)));
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), h);
  }
}

class QuantTest : public testing::TestWithParam<Isa> {};

// Round-trip error bounds of ggml's quantisers; dequantize_row on every ISA equals the
// reference exactly (it is d * q in f32 either way).
TEST_P(QuantTest, RoundTripBounds) {
  TESSERA_SKIP_IF_UNSUPPORTED(GetParam());
  ScopedIsa scoped(GetParam());
  std::mt19937 rng(9);
  const int64_t n = 32 * 37;
  auto x = random_vec(rng, n, -3.0f, 3.0f);
  x[5] = 0.0f;
  for (int j = 64; j < 96; ++j) x[j] = 0.0f;  // an all-zero block: d = 0
  for (DType t : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1}) {
    std::vector<uint8_t> q(dtype_row_bytes(t, n)), qref(q.size());
    quantize_row(t, x.data(), q.data(), n);
    ref::quantize_row(t, x.data(), qref.data(), n);
    EXPECT_EQ(q, qref) << dtype_name(t);
    std::vector<float> y(n), yref(n);
    dequantize_row(t, q.data(), y.data(), n);
    ref::dequantize_row(t, q.data(), yref.data(), n);
    EXPECT_EQ(y, yref) << dtype_name(t);
    for (int64_t b = 0; b < n / 32; ++b) {
      float amax = 0, mn = 1e30f, mx = -1e30f;
      for (int j = 0; j < 32; ++j) {
        amax = std::max(amax, std::fabs(x[32 * b + j]));
        mn = std::min(mn, x[32 * b + j]), mx = std::max(mx, x[32 * b + j]);
      }
      const double fp16_rel = std::ldexp(1.0, -11);  // scales are stored as f16
      double bound;
      switch (t) {
        case DType::kF16: bound = amax * fp16_rel; break;
        case DType::kBF16: bound = amax * std::ldexp(1.0, -8); break;
        case DType::kQ8_0: bound = amax / 127 / 2 + amax * fp16_rel * 1.01; break;
        case DType::kQ4_0: bound = amax / 8 + amax * fp16_rel * 1.01; break;  // clamp at 15
        default: bound = (mx - mn) / 15 / 2 + (std::fabs(mn) + (mx - mn)) * fp16_rel * 1.01; break;
      }
      for (int j = 0; j < 32; ++j) {
        ASSERT_LE(std::fabs(y[32 * b + j] - x[32 * b + j]), bound * 1.0001 + 1e-30)
            << dtype_name(t) << " block " << b << " elem " << j;
      }
    }
  }
}

// ggml's formulas on a hand-checkable block.
TEST(QuantGolden, GgmlFormulas) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j) - 8.0f;  // -8 .. 23
  BlockQ8_0 q8;
  ref::quantize_row(DType::kQ8_0, x.data(), &q8, 32);
  EXPECT_EQ(f16_to_f32(q8.d), f16_to_f32(f32_to_f16(23.0f / 127)));
  EXPECT_EQ(q8.qs[31], 127);
  EXPECT_EQ(q8.qs[0], static_cast<int8_t>(std::round(-8.0f * 127 / 23)));
  BlockQ4_0 q4;
  ref::quantize_row(DType::kQ4_0, x.data(), &q4, 32);
  EXPECT_EQ(f16_to_f32(q4.d), f16_to_f32(f32_to_f16(23.0f / -8)));  // d = max / -8 (max = 23)
  EXPECT_EQ(q4.qs[15] >> 4, 0);  // x = 23 -> 23/d + 8.5 = 0.5 -> 0
  BlockQ4_1 q41;
  ref::quantize_row(DType::kQ4_1, x.data(), &q41, 32);
  EXPECT_EQ(f16_to_f32(q41.m), -8.0f);
  EXPECT_EQ(f16_to_f32(q41.d), f16_to_f32(f32_to_f16(31.0f / 15)));
  EXPECT_EQ(q41.qs[0] & 0xf, 0);
  EXPECT_EQ(q41.qs[15] >> 4, 15);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, QuantTest, testing::ValuesIn(all_isas()), IsaName());

}  // namespace
}  // namespace tessera::kernels::test
