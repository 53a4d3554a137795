// Shared helpers for the kernel tests: ISA parameters, random data, tolerances.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/dtype.h"

namespace tessera::kernels::test {

// ---------------------------------------------------------------------------------
// Per-op tolerances (one table for the whole suite). "scale" is stated per op.
// ---------------------------------------------------------------------------------
// matmul F32/F16/BF16 weights: |y - ref| <= kMatmulFloatRel * sum_k |w_k x_k|
//   (the reference sums the dequantised weights in double; f32 accumulation in any
//   order is far inside this).
constexpr double kMatmulFloatRel = 1e-5;
// matmul Q8_0/Q4_0/Q4_1 weights: same bound. The reference applies llama.cpp's
//   activation rounding itself (x as Q8_0 / Q8_1 blocks, F16/BF16: x rounded to the
//   weight type; ref::matmul_rows), and every path rounds identically, so only the f32
//   accumulation differs. (MatmulRounding shows the rounding is really applied.)
// rmsnorm, add_inplace, silu/gelu(_mul), softmax: |y - ref| <= kElemAbs + kElemRel |ref|
constexpr double kElemRel = 4e-6;
constexpr double kElemAbs = 1e-6;
// rope: rotations of f32 angles shared by all paths: |y - ref| <= kRopeAbs * max|x|
constexpr double kRopeAbs = 2e-6;
// attention out: |o - ref| <= kAttnRel * max|v| ; lse: |l - ref| <= kAttnLseAbs
constexpr double kAttnRel = 1e-5;
constexpr double kAttnLseAbs = 1e-5;
// merge of two partial attentions vs one full attention (same path): as attention.
// ---------------------------------------------------------------------------------

// Every ISA level; tests for a level above the CPU's are skipped with a reason.
inline std::vector<Isa> all_isas() {
  return {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16};
}

#define TESSERA_SKIP_IF_UNSUPPORTED(isa)                                              \
  do {                                                                                \
    if (static_cast<int>(isa) > static_cast<int>(::tessera::kernels::detected_isa())) \
      GTEST_SKIP() << "CPU lacks " << ::tessera::kernels::isa_name(isa)               \
                   << " (detected " << ::tessera::kernels::isa_name(detected_isa()) << ")"; \
  } while (0)

std::vector<float> random_vec(std::mt19937& rng, int64_t n, float lo = -1.0f, float hi = 1.0f);

// W [rows][cols] stored as dtype t (quantised with the reference quantiser).
std::vector<uint8_t> make_weights(std::mt19937& rng, DType t, int64_t rows, int64_t cols,
                                  float amp = 1.0f);

struct IsaName {
  std::string operator()(const testing::TestParamInfo<Isa>& info) const {
    return std::string(isa_name(info.param));
  }
};

}  // namespace tessera::kernels::test
