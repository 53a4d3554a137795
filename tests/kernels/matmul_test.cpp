// matmul on every weight dtype and ISA level against ref::matmul (double sums).
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <utility>

#include "kernels/isa_kernels.h"
#include "kernels/ops.h"
#include "kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace tessera::kernels::test {
namespace {

using MatmulParam = std::tuple<Isa, DType>;

class MatmulTest : public testing::TestWithParam<MatmulParam> {};

struct Shape {
  int64_t rows, cols;
};

// Error scale of row r for token t: sum |w x| (see the tolerance table in test_util.h).
double admitted_error(DType, const std::vector<float>& wrow, const float* x, int64_t cols) {
  double swx = 0;
  for (int64_t k = 0; k < cols; ++k) swx += std::fabs(static_cast<double>(wrow[k]) * x[k]);
  return kMatmulFloatRel * swx + 1e-7;
}

void check_matmul(Isa isa, DType t, Shape s, int64_t n, int threads, int64_t x_pad, int64_t y_pad,
                  uint32_t seed, ActRounding act = ActRounding::kNone) {
  std::mt19937 rng(seed);
  const auto wbytes = make_weights(rng, t, s.rows, s.cols);
  WeightMatrix w{t, s.rows, s.cols, wbytes.data(), 0, act};
  const int64_t xs = s.cols + x_pad, ys = s.rows + y_pad;
  const auto x = random_vec(rng, n * xs);
  std::vector<float> y(n * ys, -7.0f), yref(n * ys, -7.0f);
  ref::matmul(w, x.data(), n, yref.data(), xs, ys);
  {
    ScopedIsa scoped(isa);
    ThreadPool pool(threads);
    matmul(pool, w, x.data(), n, y.data(), xs, ys);
  }
  std::vector<float> wrow(s.cols);
  const int64_t rb = dtype_row_bytes(t, s.cols);
  for (int64_t r = 0; r < s.rows; ++r) {
    ref::dequantize_row(t, wbytes.data() + r * rb, wrow.data(), s.cols);
    for (int64_t tok = 0; tok < n; ++tok) {
      const double tol = admitted_error(t, wrow, x.data() + tok * xs, s.cols);
      ASSERT_NEAR(y[tok * ys + r], yref[tok * ys + r], tol)
          << dtype_name(t) << " " << isa_name(isa) << " rows " << s.rows << " cols " << s.cols
          << " n " << n << " threads " << threads << " act " << static_cast<int>(act) << " at token "
          << tok << " row " << r;
    }
    for (int64_t tok = 0; tok < n; ++tok)
      for (int64_t p = 0; p < y_pad; ++p) ASSERT_EQ(y[tok * ys + s.rows + p], -7.0f) << "wrote padding";
  }
}

TEST_P(MatmulTest, MatchesReference) {
  const auto [isa, t] = GetParam();
  TESSERA_SKIP_IF_UNSUPPORTED(isa);
  // cols not a multiple of 64 (and, for plain types, not even of 16); rows not a
  // multiple of any row tile.
  const std::vector<Shape> shapes =
      dtype_is_quantized(t) ? std::vector<Shape>{{37, 96}, {53, 160}, {13, 544}}
                            : std::vector<Shape>{{37, 67}, {53, 200}, {13, 533}};
  uint32_t seed = 1;
  for (const Shape s : shapes) {
    // 2 .. 16: the small-M paths (speculative verify steps, small decode batches),
    // which stream each W tile once for all tokens in balanced chunks.
    for (int64_t n : {1, 2, 3, 5, 6, 7, 8, 9, 16, 17, 64, 130}) {
      for (int threads : {1, 2}) {
        check_matmul(isa, t, s, n, threads, 0, 0, seed++);
        if (t == DType::kF16 || t == DType::kBF16)
          check_matmul(isa, t, s, n, threads, 0, 0, seed++, ActRounding::kWeightType);
      }
    }
  }
}

TEST_P(MatmulTest, StridedInputAndOutput) {
  const auto [isa, t] = GetParam();
  TESSERA_SKIP_IF_UNSUPPORTED(isa);
  const int64_t cols = dtype_is_quantized(t) ? 64 : 40;
  for (int64_t n : {1, 2, 5, 9}) check_matmul(isa, t, {19, cols}, n, 2, 5, 3, 100 + n);
}

// A K longer than one GEMM K block (kGemmKc = 512) with rows in several tiles.
TEST_P(MatmulTest, LongK) {
  const auto [isa, t] = GetParam();
  TESSERA_SKIP_IF_UNSUPPORTED(isa);
  for (int64_t n : {1, 5, 33}) check_matmul(isa, t, {29, 1184}, n, 2, 0, 0, 200 + n);
  for (int64_t n : {1, 5, 33}) check_matmul(isa, t, {29, 1184}, n, 2, 0, 0, 300 + n, ActRounding::kWeightType);
}

// The activation rounding is really applied, on every path: the kernel's result matches
// the reference computed on the rounded x (Q8_0 / Q8_1 blocks, bf16 / fp16) and is
// measurably far from the plain f32-activation dot product.
TEST_P(MatmulTest, RoundsActivationsLikeLlamaCpp) {
  const auto [isa, t] = GetParam();
  TESSERA_SKIP_IF_UNSUPPORTED(isa);
  std::mt19937 rng(77);
  const int64_t rows = 16, cols = 256;
  const auto wb = make_weights(rng, t, rows, cols);
  WeightMatrix w{t, rows, cols, wb.data(), 0, ActRounding::kWeightType};
  // Activations with a wide range inside each block make int8 rounding coarse.
  auto x = random_vec(rng, 16 * cols);
  for (size_t i = 0; i < x.size(); i += 7) x[i] *= 20.0f;
  std::vector<float> wrow(cols);
  for (int64_t n : {1, 16}) {
    std::vector<float> y(n * rows), yref(n * rows);
    ref::matmul(w, x.data(), n, yref.data());
    {
      ScopedIsa scoped(isa);
      ThreadPool pool(2);
      matmul(pool, w, x.data(), n, y.data());
    }
    double max_round_effect = 0;
    for (int64_t r = 0; r < rows; ++r) {
      ref::dequantize_row(t, wb.data() + r * dtype_row_bytes(t, cols), wrow.data(), cols);
      for (int64_t tok = 0; tok < n; ++tok) {
        const float* xt = x.data() + tok * cols;
        double plain = 0, swx = 0;
        for (int64_t k = 0; k < cols; ++k) {
          plain += static_cast<double>(wrow[k]) * xt[k];
          swx += std::fabs(static_cast<double>(wrow[k]) * xt[k]);
        }
        const double got = y[tok * rows + r], want = yref[tok * rows + r];
        ASSERT_NEAR(got, want, kMatmulFloatRel * swx + 1e-7) << isa_name(isa) << " n " << n << " row " << r;
        max_round_effect = std::max(max_round_effect, std::fabs(want - plain) / (kMatmulFloatRel * swx + 1e-7));
      }
    }
    // The rounding moves results by several times the kernel tolerance (fp16 keeps 11
    // bits, so its effect is the smallest); F32 weights never round activations, so
    // there the reference is the plain product.
    if (t == DType::kF32)
      EXPECT_LT(max_round_effect, 1.0) << "F32 must not round activations, n " << n;
    else
      EXPECT_GT(max_round_effect, t == DType::kF16 ? 3.0 : 10.0) << dtype_name(t) << " n " << n;
  }
}

std::string matmul_name(const testing::TestParamInfo<MatmulParam>& info) {
  return std::string(isa_name(std::get<0>(info.param))) + "_" +
         std::string(dtype_name(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(
    AllDtypesAllIsas, MatmulTest,
    testing::Combine(testing::ValuesIn(all_isas()),
                     testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0,
                                     DType::kQ4_0, DType::kQ4_1)),
    matmul_name);

// F32 weights, n == 1 must be (nearly) a plain f32 dot product: the model tests compare
// logits at 1e-4 absolute. Checked against a float-accumulated dot at 1e-6 relative to
// sum |w x| on a large row.
TEST(MatmulExactness, F32GemvCloseToPlainDot) {
  std::mt19937 rng(7);
  const int64_t rows = 8, cols = 4096;
  const auto w = random_vec(rng, rows * cols);
  const auto x = random_vec(rng, cols);
  for (Isa isa : all_isas()) {
    if (isa > detected_isa()) continue;
    ScopedIsa scoped(isa);
    ThreadPool pool(2);
    std::vector<float> y(rows);
    matmul(pool, {DType::kF32, rows, cols, w.data(), 0}, x.data(), 1, y.data());
    for (int64_t r = 0; r < rows; ++r) {
      float dot = 0;
      double swx = 0;
      for (int64_t k = 0; k < cols; ++k) {
        dot += w[r * cols + k] * x[k];
        swx += std::fabs(w[r * cols + k] * x[k]);
      }
      EXPECT_NEAR(y[r], dot, 1e-6 * swx) << isa_name(isa) << " row " << r;
    }
  }
}

// The vdpbf16ps GEMM (not dispatched by default, see ops.cpp) against the reference
// with bf16-rounded activations.
TEST(MatmulBf16Dot, MatchesRoundedReference) {
  if (detected_isa() < Isa::kAvx512Bf16) GTEST_SKIP() << "CPU lacks AVX512_BF16";
  std::mt19937 rng(5);
  for (const auto [rows, cols, n] : {std::tuple<int64_t, int64_t, int64_t>{37, 64, 40}, {13, 1030, 17}, {25, 96, 8}}) {
    const auto wb = make_weights(rng, DType::kBF16, rows, cols);
    const WeightMatrix w{DType::kBF16, rows, cols, wb.data(), 0, ActRounding::kWeightType};
    const auto x = random_vec(rng, n * cols);
    std::vector<float> yref(n * rows), y(n * rows, -7.0f);
    ref::matmul(w, x.data(), n, yref.data());
    const int64_t groups = (n + kGemmTokens - 1) / kGemmTokens;
    alignas(64) static uint16_t scratch[kGemmMaxMr * kGemmKc];
    std::vector<uint16_t> xp(groups * kGemmTokens * cols + 32);  // 64-byte aligned inside
    auto* xpa = reinterpret_cast<uint16_t*>((reinterpret_cast<uintptr_t>(xp.data()) + 63) & ~uintptr_t{63});
    avx512bf16::gemm_pack_x(x.data(), n, cols, cols, xpa);
    avx512bf16::gemm_rows(w, xpa, n, y.data(), rows, 0, rows, scratch);
    std::vector<float> wrow(cols);
    for (int64_t r = 0; r < rows; ++r) {
      ref::dequantize_row(DType::kBF16, wb.data() + r * cols * 2, wrow.data(), cols);
      for (int64_t t = 0; t < n; ++t) {
        double swx = 0;
        for (int64_t k = 0; k < cols; ++k) swx += std::fabs(static_cast<double>(wrow[k]) * x[t * cols + k]);
        ASSERT_NEAR(y[t * rows + r], yref[t * rows + r], kMatmulFloatRel * swx + 1e-7) << rows << "x" << cols << " n " << n;
      }
    }
  }
}

// Thread counts 1 and 2 agree (each is deterministic; splits differ only by rows).
// Q4_1 with ggml_q41_order follows llama.cpp's f32 operation order
// (ref::q4_1_dot_ggml_order): every ISA level, GEMV and GEMM, odd block counts and row
// tails give the reference bit for bit.
TEST(MatmulQ41, BitIdenticalToGgmlOrderOnEveryIsa) {
  std::mt19937 rng(41);
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{13, 160}, {64, 576}, {7, 32}}) {
    const auto wb = make_weights(rng, DType::kQ4_1, rows, cols);
    const WeightMatrix w{DType::kQ4_1, rows, cols, wb.data(), 0, ActRounding::kWeightType, /*ggml_q41_order=*/true};
    auto x = random_vec(rng, 37 * cols);
    for (size_t i = 0; i < x.size(); i += 5) x[i] *= 30.0f;
    for (int64_t n : {1, 3, 37}) {
      std::vector<float> yref(n * rows), y(n * rows);
      ref::matmul(w, x.data(), n, yref.data());
      for (const Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16}) {
        if (isa > detected_isa()) continue;
        ScopedIsa scoped(isa);
        ThreadPool pool(2);
        matmul(pool, w, x.data(), n, y.data());
        for (int64_t i = 0; i < n * rows; ++i)
          ASSERT_EQ(y[i], yref[i]) << isa_name(isa) << " " << rows << "x" << cols << " n " << n << " at " << i;
      }
    }
  }
}

TEST(MatmulThreads, OneAndTwoThreadsAgree) {
  std::mt19937 rng(11);
  for (DType t : {DType::kF32, DType::kQ4_0}) {
    const auto wb = make_weights(rng, t, 70, 256);
    WeightMatrix w{t, 70, 256, wb.data(), 0};
    const auto x = random_vec(rng, 20 * 256);
    for (int64_t n : {1, 20}) {
      std::vector<float> y1(n * 70), y2(n * 70), y2b(n * 70);
      ThreadPool p1(1), p2(2);
      matmul(p1, w, x.data(), n, y1.data());
      matmul(p2, w, x.data(), n, y2.data());
      matmul(p2, w, x.data(), n, y2b.data());
      EXPECT_EQ(y2, y2b) << "not deterministic";
      for (size_t i = 0; i < y1.size(); ++i) EXPECT_NEAR(y1[i], y2[i], 1e-5 * (1 + std::fabs(y1[i])));
    }
  }
}

}  // namespace
}  // namespace tessera::kernels::test
