// Q8_0 with 16 rows interleaved (kernels/q8_packed.h): the packing round-trips, and the
// VNNI kernel on the packed matrix equals the scalar reference on the row-major Q8_0
// matrix it was packed from (same activation rounding; only f32 summation order may
// differ), for every token count path, odd block counts, partial row groups, strides
// and thread counts. The reference path of a packed matrix (ISA below AVX-512) too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/ops.h"
#include "kernels/q8_packed.h"
#include "kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace tessera::kernels::test {
namespace {

struct Packed {
  std::vector<uint8_t> rows;    // row-major Q8_0
  std::vector<uint8_t> packed;  // Q8Rows16
  WeightMatrix w_rows, w_packed;
};

Packed make_packed(std::mt19937& rng, int64_t rows, int64_t cols) {
  Packed p;
  p.rows = make_weights(rng, DType::kQ8_0, rows, cols);
  p.packed.assign(static_cast<size_t>(q8_rows16_bytes(rows, cols)), 0xee);
  p.w_packed = pack_q8_rows16(p.rows.data(), 0, rows, cols, p.packed.data());
  p.w_rows = WeightMatrix{DType::kQ8_0, rows, cols, p.rows.data()};
  return p;
}

TEST(Q8Rows16, PackingRoundTripsEveryRow) {
  std::mt19937 rng(7);
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 32}, {17, 96}, {33, 64}, {48, 576}}) {
    const Packed p = make_packed(rng, rows, cols);
    EXPECT_EQ(p.w_packed.layout, WeightLayout::kQ8Rows16);
    const int64_t rb = dtype_row_bytes(DType::kQ8_0, cols);
    std::vector<uint8_t> back(static_cast<size_t>(rb));
    for (int64_t r = 0; r < rows; ++r) {
      unpack_q8_rows16_row(p.w_packed, r, back.data());
      ASSERT_EQ(std::memcmp(back.data(), p.rows.data() + r * rb, rb), 0) << rows << "x" << cols << " row " << r;
    }
  }
}

// y of the packed kernel vs ref::matmul on the row-major matrix, |dy| <= 1e-5 sum|w x|.
void check(Isa isa, int64_t rows, int64_t cols, int64_t n, int threads, int64_t x_pad, int64_t y_pad,
           uint32_t seed) {
  std::mt19937 rng(seed);
  const Packed p = make_packed(rng, rows, cols);
  const int64_t xs = cols + x_pad, ys = rows + y_pad;
  const auto x = random_vec(rng, n * xs);
  std::vector<float> y(n * ys, -7.0f), yref(n * ys, -7.0f);
  ref::matmul(p.w_rows, x.data(), n, yref.data(), xs, ys);
  {
    ScopedIsa scoped(isa);
    ThreadPool pool(threads);
    matmul(pool, p.w_packed, x.data(), n, y.data(), xs, ys);
  }
  std::vector<float> wrow(cols);
  const int64_t rb = dtype_row_bytes(DType::kQ8_0, cols);
  for (int64_t r = 0; r < rows; ++r) {
    ref::dequantize_row(DType::kQ8_0, p.rows.data() + r * rb, wrow.data(), cols);
    for (int64_t t = 0; t < n; ++t) {
      double swx = 0;
      for (int64_t k = 0; k < cols; ++k) swx += std::fabs(static_cast<double>(wrow[k]) * x[t * xs + k]);
      ASSERT_NEAR(y[t * ys + r], yref[t * ys + r], kMatmulFloatRel * swx + 1e-7)
          << isa_name(isa) << " " << rows << "x" << cols << " n " << n << " threads " << threads << " token " << t
          << " row " << r;
    }
    for (int64_t t = 0; t < n; ++t)
      for (int64_t q = 0; q < y_pad; ++q) ASSERT_EQ(y[t * ys + rows + q], -7.0f) << "wrote past the rows";
  }
}

TEST(Q8Rows16, Avx512MatchesReferenceForEveryTokenCount) {
  TESSERA_SKIP_IF_UNSUPPORTED(Isa::kAvx512);
  ASSERT_TRUE(q8_rows16_available());
  uint32_t seed = 1;
  // cols: one block (odd), an even count, an odd count > 2, SmolLM2's 576 (18 blocks) and
  // 1536; rows: below, at and above one group, and not a multiple of 16.
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{5, 32}, {16, 64}, {17, 96}, {40, 576}, {33, 1536}})
    for (int64_t n : {1, 2, 3, 7, 8, 9, 16, 17, 33})
      for (int threads : {1, 2}) check(Isa::kAvx512, rows, cols, n, threads, 0, 0, seed++);
}

TEST(Q8Rows16, StridedInputAndOutput) {
  TESSERA_SKIP_IF_UNSUPPORTED(Isa::kAvx512);
  for (int64_t n : {1, 4, 9}) check(Isa::kAvx512, 19, 160, n, 2, 5, 3, 100 + n);
}

// Below AVX-512 the packed matrix still computes (row by row through the reference).
TEST(Q8Rows16, ReferencePathOnOtherIsas) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2})
    for (int64_t n : {1, 3}) check(isa, 21, 96, n, 2, 0, 2, 200 + n);
}

// The kernel is not trivially equal to the reference: a one-byte change in the packed
// quants changes exactly the output of its row.
TEST(Q8Rows16, PackedBytesReachTheirRow) {
  TESSERA_SKIP_IF_UNSUPPORTED(Isa::kAvx512);
  std::mt19937 rng(3);
  Packed p = make_packed(rng, 32, 64);
  const auto x = random_vec(rng, 64);
  std::vector<float> y0(32), y1(32);
  ThreadPool pool(1);
  matmul(pool, p.w_packed, x.data(), 1, y0.data());
  // row 16 + 5 (group 1), block 1 (h = 1), k = 4*2 + 1: byte 1088 + 512 + 2*64 + 5*4 + 1
  p.packed[kQ8Rows16PairBytes + 512 + 128 + 21] ^= 0x40;
  matmul(pool, p.w_packed, x.data(), 1, y1.data());
  for (int r = 0; r < 32; ++r) {
    if (r == 21)
      EXPECT_NE(y0[r], y1[r]);
    else
      EXPECT_EQ(y0[r], y1[r]) << "row " << r;
  }
}

}  // namespace
}  // namespace tessera::kernels::test
