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

// Activations quantised for the int8 kernels, exactly as llama.cpp's x86 CPU backend
// quantises the activation operand of a Q8_0/Q4_0 (-> Q8_0) or Q4_1 (-> Q8_1) matmul
// (ref::quantize_act_block): per 32-block d = amax/127, q = round-half-even(x * 127/amax),
// the scale used is fp16(d), and Q8_1's s = fp16(d * sum(q)).
//
// Stored in pairs of blocks (b0 = 2p, b1 = 2p+1) so one zmm holds both; "lane" below is
// an int32 lane of that zmm (bytes 4l .. 4l+3 of q). The byte order follows the weight
// layout so the weights need no shuffle:
//   Q8_0 weights:  q = b0[0..31], b1[0..31]                   lanes 0-7 b0, 8-15 b1
//   Q4_0 / Q4_1:   q = b0[0..15], b1[0..15], b0[16..31], b1[16..31]
//                  (low nibbles of both blocks, then high ones) lanes 0-3, 8-11 b0; 4-7, 12-15 b1
// corr folds the weight offset into the int32 accumulator (Q8_0 is fed as w ^ 0x80 = w + 128:
// corr = -128 * sum4(q); Q4_0 nibbles are value + 8: corr = -8 * sum4(q); Q4_1: 0).
// d[l] = fp16(d) of the lane's block; s (Q4_1 only) holds fp16(d*sum q) of b0 in lane 0 and
// of b1 in lane 4, zero elsewhere, so sum_l m[l] * s[l] = m0 s0 + m1 s1. A missing b1
// (odd block count) is all zero.
struct alignas(64) QActPair {
  int8_t q[64];
  int32_t corr[16];
  float d[16];
  float s[16];
};
static_assert(sizeof(QActPair) == 256);

inline int64_t qact_pairs(int64_t cols) { return (cols / 32 + 1) / 2; }

// GEMM geometry shared by ops.cpp (buffer sizes) and the ISA files.
constexpr int64_t kGemmTokens = 32;  // tokens per packed x group (lanes of 2 zmm / 4 ymm)
constexpr int64_t kGemmKc = 512;     // K block: W tile rows are kGemmKc floats apart
constexpr int64_t kGemmMaxMr = 12;   // W rows per micro-tile
// Decode-style kernels below this many tokens; packed GEMM from here on.
constexpr int64_t kGemmMinTokens = 17;

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
  void quantize_acts(DType wt, const float* x, int64_t cols, QActPair* out);                  \
  /* y[t*ys + r] = W[r] . x_t (int8 kernels), block-quantised W, n quantised tokens           \
     (token t at xq + t * qact_pairs(cols)), rows [r0, r1). */                                 \
  void qgemm_rows(const WeightMatrix& w, const QActPair* xq, int64_t n, float* y, int64_t ys, \
                  int64_t r0, int64_t r1);                                                   \
  /* out = x rounded to the activation type of F16 / BF16 weights (fp16 / bf16, RNE). */     \
  void round_acts(DType wt, const float* x, float* out, int64_t n);                          \
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

// Per token and 32-column block of quantised x: corr = -128 * sum of the block's q (undoes
// the +128 of Q8Rows16 weights) and d = the block's scale (zero for a padding block).
struct QBlockSums {
  int32_t corr;
  float d;
};

namespace avx512 {
// Q8Rows16 weights (kernels/q8_packed.h): y[t*ys + r] = W[r] . x_t for the rows of groups
// [g0, g1), n tokens; x_t at xq + t * qact_pairs(cols), its block sums at
// cd + t * 2 * qact_pairs(cols).
void q8_rows16_rows(const WeightMatrix& w, const QActPair* xq, const QBlockSums* cd, int64_t n, float* y,
                    int64_t ys, int64_t g0, int64_t g1);
}  // namespace avx512

// AVX512_BF16: GEMM for BF16 weights with bf16-rounded activations (cpu_avx512bf16_matmul.cpp).
// Needs even cols. x packed as bf16 pairs along k: xp[g][k/2][kGemmTokens][2] (x rounded
// RNE); scratch: kGemmMaxMr * kGemmKc uint16, 64-byte aligned.
namespace avx512bf16 {
void gemm_pack_x(const float* x, int64_t n, int64_t xs, int64_t cols, uint16_t* xp);
void gemm_rows(const WeightMatrix& w, const uint16_t* xp, int64_t n, float* y, int64_t ys,
               int64_t r0, int64_t r1, uint16_t* scratch);
}  // namespace avx512bf16

}  // namespace tessera::kernels
