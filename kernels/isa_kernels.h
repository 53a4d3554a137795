// Internal: entry points of the per-ISA translation units (cpu_avx2*.cpp,
// cpu_avx512*.cpp), called by ops.cpp, which owns threading and buffers.
//
// Each ISA lives in its own namespace: the files are compiled with different -m flags,
// and distinct names keep the linker from merging an AVX-512 instantiation into an
// AVX2 caller. For the same reason those files use no std containers or other
// templates that would be emitted as shared weak symbols: raw pointers only.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/ops.h"

namespace tessera::kernels {

// An activation block quantised to int8 for the integer GEMV (llama.cpp's Q8 style),
// with its scale kept apart in a float array. corr folds the weight format's offset
// into the integer accumulator, so the inner loop needs no extra instruction:
//   Q8_0 (weights fed as w + 128 unsigned): corr[l] = -128 * sum(q[4l .. 4l+3])
//   Q4_0 (nibbles 0..15 = value + 8):       corr[l] =   -8 * sum(q[4l .. 4l+3])
//   Q4_1 (value = d*q + m):                 corr[l] = bits of float d_x * sum(q[4l..4l+3])
struct alignas(64) QActBlock {
  int8_t q[32];
  int32_t corr[8];
};
static_assert(sizeof(QActBlock) == 64);

// GEMM geometry shared by ops.cpp (buffer sizes) and the ISA files.
constexpr int64_t kGemmTokens = 32;  // tokens per packed x group (lanes of 2 zmm / 4 ymm)
constexpr int64_t kGemmKc = 512;     // K block: W tile rows are kGemmKc floats apart
constexpr int64_t kGemmMaxMr = 12;   // W rows per micro-tile
// Decode-style kernels below this many tokens; packed GEMM from here on.
constexpr int64_t kGemmMinTokens = 8;

// Attention: KV is processed in chunks of at most kAttnChunk tokens; a task holds
// (t1 - t0) * group query rows, at most kAttnMaxRows.
constexpr int64_t kAttnChunk = 64;
constexpr int64_t kAttnMaxRows = 64;
constexpr int64_t kAttnMaxHeadDim = 256;
inline int64_t attention_scratch_floats(int64_t rows, int64_t head_dim) {
  return rows * (kAttnChunk + head_dim + 2) + 64;
}

#define TESSERA_DECLARE_ISA_KERNELS(ns)                                                      \
  namespace ns {                                                                             \
  /* y[t*ys + r] = W[r] . x[t*xs], t < n, r in [r0, r1); float-type weights (F32/F16/BF16) */ \
  void gemv_float(const WeightMatrix& w, const float* x, int64_t n, int64_t xs, float* y,    \
                  int64_t ys, int64_t r0, int64_t r1);                                       \
  /* Quantise one activation row of cols floats for weights of type wt (Q8_0/Q4_0/Q4_1). */  \
  void quantize_acts(DType wt, const float* x, int64_t cols, QActBlock* blocks, float* d);    \
  /* y[r] (r in [r0, r1)) = W[r] . x for block-quantised W and one quantised token. */       \
  void gemv_quant(const WeightMatrix& w, const QActBlock* xb, const float* xd, float* y,      \
                  int64_t r0, int64_t r1);                                                   \
  /* Packs x [n][cols] (rows xs apart) into groups of kGemmTokens: xp[g][k][kGemmTokens].  */ \
  void gemm_pack_x(const float* x, int64_t n, int64_t xs, int64_t cols, float* xp);          \
  /* y rows [r0, r1) for all n tokens from packed x. scratch: kGemmMaxMr*kGemmKc floats,    \
     64-byte aligned. */                                                                     \
  void gemm_rows(const WeightMatrix& w, const float* xp, int64_t n, float* y, int64_t ys,    \
                 int64_t r0, int64_t r1, float* scratch);                                    \
  void dequantize_row(DType t, const void* src, float* out, int64_t n);                     \
  void silu(float* x, int64_t n);                                                            \
  void gelu(float* x, int64_t n);                                                            \
  void silu_mul(float* g, const float* up, int64_t n);                                       \
  void gelu_mul(float* g, const float* up, int64_t n);                                       \
  void add_inplace(float* y, const float* x, int64_t n);                                     \
  void softmax(float* x, int64_t n_rows, int64_t n);                                         \
  void rmsnorm(const float* x, const float* w, float* out, int64_t n_rows, int64_t dim,      \
               float eps);                                                                   \
  /* Queries [t0, t1) x all query heads of KV head kvh; scratch: attention_scratch_floats. */\
  void attention_task(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t kvh,           \
                      float* scratch);                                                       \
  }

TESSERA_DECLARE_ISA_KERNELS(avx512)
TESSERA_DECLARE_ISA_KERNELS(avx2)

}  // namespace tessera::kernels
