// AVX512_BF16 GEMM for BF16 weights whose activations are rounded to bf16
// (ActRounding::kWeightType, llama.cpp's semantics): vdpbf16ps multiplies bf16 pairs
// exactly and accumulates in f32 (as llama.cpp's own BF16 dot does), two MACs per lane
// per instruction - twice the f32 FMA rate. Compiled with -mavx512bf16 on top of the
// AVX-512 flags; only called when active_isa() >= kAvx512Bf16.
//
// Same geometry as the f32 GEMM (cpu_avx512_matmul.cpp): tokens are the vector lanes,
// W rows are broadcast. x is packed as bf16 pairs along k: xp[g][k/2][32 tokens][2];
// a W tile (12 rows x kGemmKc) is copied raw (bf16) into scratch, rows kGemmKc apart,
// so each broadcast of a (w[k], w[k+1]) pair is a 32-bit embedded broadcast.
#include <immintrin.h>

#include <cstring>
#include <utility>

#include "kernels/isa_kernels.h"

namespace tessera::kernels::avx512bf16 {
namespace {

inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh&>(v); }

template <int MR, int NV>
void kernel(const uint16_t* wt, const uint16_t* xp, int64_t kc, float* out /*[MR][32]*/) {
  __m512 acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t kp = 0; kp < kc / 2; ++kp) {
    __m512i xv[NV];
    for (int v = 0; v < NV; ++v) xv[v] = _mm512_load_si512(xp + kp * 2 * kGemmTokens + 32 * v);
    for (int i = 0; i < MR; ++i) {
      int32_t pair;
      std::memcpy(&pair, wt + i * kGemmKc + 2 * kp, 4);
      const __m512i wb = _mm512_set1_epi32(pair);
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], as_bh(wb), as_bh(xv[v]));
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) _mm512_store_ps(out + i * kGemmTokens + 16 * v, acc[i][v]);
}

using Kernel = void (*)(const uint16_t*, const uint16_t*, int64_t, float*);
template <int NV, int... M>
constexpr Kernel pick(int mr, std::integer_sequence<int, M...>) {
  Kernel k = nullptr;
  ((k = (mr == M + 1) ? kernel<M + 1, NV> : k), ...);
  return k;
}
Kernel kernel_for(int mr, int nv) {
  return nv == 1 ? pick<1>(mr, std::make_integer_sequence<int, kGemmMaxMr>{})
                 : pick<2>(mr, std::make_integer_sequence<int, kGemmMaxMr>{});
}

inline uint16_t to_bf16(float f) {  // RNE; NaN stays NaN (as f32_to_bf16)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace

void gemm_pack_x(const float* x, int64_t n, int64_t xs, int64_t cols, uint16_t* xp) {
  const int64_t groups = (n + kGemmTokens - 1) / kGemmTokens;
  for (int64_t g = 0; g < groups; ++g) {
    uint16_t* dst = xp + g * cols * kGemmTokens;
    const int64_t t0 = g * kGemmTokens;
    const int64_t nt = n - t0 < kGemmTokens ? n - t0 : kGemmTokens;
    if (nt < kGemmTokens) std::memset(dst, 0, cols * kGemmTokens * sizeof(uint16_t));
    for (int64_t t = 0; t < nt; ++t) {
      const float* src = x + (t0 + t) * xs;
      for (int64_t k = 0; k < cols; ++k) dst[(k / 2) * 2 * kGemmTokens + 2 * t + (k & 1)] = to_bf16(src[k]);
    }
  }
}

void gemm_rows(const WeightMatrix& w, const uint16_t* xp, int64_t n, float* y, int64_t ys,
               int64_t r0, int64_t r1, uint16_t* scratch) {
  const int64_t rs = w.row_stride ? w.row_stride : dtype_row_bytes(w.dtype, w.cols);
  const char* base = static_cast<const char*>(w.data);
  const int64_t K = w.cols;
  const int64_t groups = (n + kGemmTokens - 1) / kGemmTokens;
  alignas(64) float out[kGemmMaxMr * kGemmTokens];
  for (int64_t k0 = 0; k0 < K; k0 += kGemmKc) {
    const int64_t kc = K - k0 < kGemmKc ? K - k0 : kGemmKc;  // even: K is
    for (int64_t r = r0; r < r1; r += kGemmMaxMr) {
      const int mr = static_cast<int>(r1 - r < kGemmMaxMr ? r1 - r : kGemmMaxMr);
      for (int i = 0; i < mr; ++i) std::memcpy(scratch + i * kGemmKc, base + (r + i) * rs + 2 * k0, 2 * kc);
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t t0 = g * kGemmTokens;
        const int64_t nt = n - t0 < kGemmTokens ? n - t0 : kGemmTokens;
        kernel_for(mr, nt > 16 ? 2 : 1)(scratch, xp + g * K * kGemmTokens + k0 * kGemmTokens, kc, out);
        for (int i = 0; i < mr; ++i) {
          float* yr = y + t0 * ys + r + i;
          const float* o = out + i * kGemmTokens;
          if (k0 == 0) {
            for (int64_t t = 0; t < nt; ++t) yr[t * ys] = o[t];
          } else {
            for (int64_t t = 0; t < nt; ++t) yr[t * ys] += o[t];
          }
        }
      }
    }
  }
}

}  // namespace tessera::kernels::avx512bf16
