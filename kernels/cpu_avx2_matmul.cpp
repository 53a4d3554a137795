// AVX2 + FMA + F16C matmul: GEMV per weight dtype (int8 maddubs for the block formats)
// and the packed GEMM with a 6 x 16 ymm micro-kernel. Same structure as
// cpu_avx512_matmul.cpp; only called when active_isa() >= kAvx2.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/avx2_math.h"
#include "kernels/fp16.h"
#include "kernels/isa_kernels.h"

namespace tessera::kernels::avx2 {
namespace {

int64_t row_stride(const WeightMatrix& w) {
  return w.row_stride ? w.row_stride : dtype_row_bytes(w.dtype, w.cols);
}

template <DType T>
inline __m256 load8(const char* row, int64_t k) {
  if constexpr (T == DType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (T == DType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <DType T>
inline float load1(const char* row, int64_t k) {
  if constexpr (T == DType::kF32) {
    return reinterpret_cast<const float*>(row)[k];
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return T == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
}

template <DType T, int NT, int R>
void gemv_tile(const char* w0, int64_t rs, const float* x, int64_t xs, int64_t K, float* out) {
  __m256 acc[NT][R];
  for (int t = 0; t < NT; ++t)
    for (int i = 0; i < R; ++i) acc[t][i] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 xv[NT];
    for (int t = 0; t < NT; ++t) xv[t] = _mm256_loadu_ps(x + t * xs + k);
    for (int i = 0; i < R; ++i) {
      const __m256 wv = load8<T>(w0 + i * rs, k);
      for (int t = 0; t < NT; ++t) acc[t][i] = _mm256_fmadd_ps(wv, xv[t], acc[t][i]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    for (int i = 0; i < R; ++i) {
      float s = hsum(acc[t][i]);
      for (int64_t kk = k; kk < K; ++kk) s += load1<T>(w0 + i * rs, kk) * x[t * xs + kk];
      out[t * R + i] = s;
    }
  }
}

// y[t*ys + i] = row i . x_t for R rows (w0, rs bytes apart) and all n tokens, two at a
// time (R = 4 rows x 2 tokens: 8 accumulators + 2 x + 1 W of the 16 ymm). The rows
// come from memory once and are re-read from L1/L2 for every later token pair, so a
// verify step of n tokens streams W once, as a one-token decode step does.
template <DType T, int R>
void gemv_rows(const char* w0, int64_t rs, const float* x, int64_t n, int64_t xs, int64_t K, float* y,
               int64_t ys) {
  float out[2 * R];
  int64_t t = 0;
  for (; t + 2 <= n; t += 2) {
    gemv_tile<T, 2, R>(w0, rs, x + t * xs, xs, K, out);
    for (int j = 0; j < 2; ++j)
      for (int i = 0; i < R; ++i) y[(t + j) * ys + i] = out[j * R + i];
  }
  if (t < n) {
    gemv_tile<T, 1, R>(w0, rs, x + t * xs, xs, K, out);
    for (int i = 0; i < R; ++i) y[t * ys + i] = out[i];
  }
}

template <DType T>
void gemv_float_t(const WeightMatrix& w, const float* x, int64_t n, int64_t xs, float* y,
                  int64_t ys, int64_t r0, int64_t r1) {
  constexpr int R = 4;
  const int64_t rs = row_stride(w);
  const char* base = static_cast<const char*>(w.data);
  int64_t r = r0;
  for (; r + R <= r1; r += R) gemv_rows<T, R>(base + r * rs, rs, x, n, xs, w.cols, y + r, ys);
  for (; r < r1; ++r) gemv_rows<T, 1>(base + r * rs, rs, x, n, xs, w.cols, y + r, ys);
}

template <DType T> struct QBlock;
template <> struct QBlock<DType::kQ8_0> { using type = BlockQ8_0; };
template <> struct QBlock<DType::kQ4_0> { using type = BlockQ4_0; };
template <> struct QBlock<DType::kQ4_1> { using type = BlockQ4_1; };

// Int8 kernels for decode and prefill (MR W rows x NT tokens over the whole K), on the
// QActPair layout: per pair, half h of the 64 bytes is one ymm (Q8_0: block 2p+h;
// Q4: the low (h = 0) or high (h = 1) nibbles of both blocks). maddubs is u8 x s8:
// Q8_0 moves x's sign onto w (|x|, |w| <= 127: no saturation); Q4 nibbles are unsigned.
template <DType T, int MR, int NT, bool kHas1>
__attribute__((always_inline)) inline void qpair_step(const typename QBlock<T>::type* const* rows,
                                                      const QActPair* x, int64_t xstride,
                                                      int64_t p, __m256 (&acc)[MR][NT]) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < MR; ++i) {
    const auto* b = rows[i] + 2 * p;
    __m256i w[2];
    __m256 dw[2], mw[2];
    const float d0 = _cvtsh_ss(b[0].d), d1 = kHas1 ? _cvtsh_ss(b[1].d) : 0.0f;
    if constexpr (T == DType::kQ8_0) {
      w[0] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs));
      w[1] = kHas1 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)) : _mm256_setzero_si256();
      dw[0] = _mm256_set1_ps(d0);
      dw[1] = _mm256_set1_ps(d1);
    } else {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[0].qs));
      const __m128i c = kHas1 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[1].qs)) : _mm_setzero_si128();
      const __m256i v = _mm256_set_m128i(c, a);
      const __m256i mask = _mm256_set1_epi8(0x0f);
      w[0] = _mm256_and_si256(v, mask);
      w[1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
      dw[0] = dw[1] = _mm256_blend_ps(_mm256_set1_ps(d0), _mm256_set1_ps(d1), 0xf0);
      if constexpr (T == DType::kQ4_1) {
        const float m0 = _cvtsh_ss(b[0].m), m1 = kHas1 ? _cvtsh_ss(b[1].m) : 0.0f;
        mw[0] = mw[1] = _mm256_blend_ps(_mm256_set1_ps(m0), _mm256_set1_ps(m1), 0xf0);
      }
    }
    for (int t = 0; t < NT; ++t) {
      const QActPair& a = x[t * xstride + p];
      for (int h = 0; h < 2; ++h) {
        const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.q + 32 * h));
        __m256i dot;
        if constexpr (T == DType::kQ8_0) {
          dot = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(xq, xq), _mm256_sign_epi8(w[h], xq)), ones);
        } else {
          dot = _mm256_madd_epi16(_mm256_maddubs_epi16(w[h], xq), ones);
          if constexpr (T == DType::kQ4_0)
            dot = _mm256_add_epi32(dot, _mm256_load_si256(reinterpret_cast<const __m256i*>(a.corr + 8 * h)));
        }
        const __m256 sc = _mm256_mul_ps(dw[h], _mm256_load_ps(a.d + 8 * h));
        acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), sc, acc[i][t]);
        if constexpr (T == DType::kQ4_1) acc[i][t] = _mm256_fmadd_ps(mw[h], _mm256_load_ps(a.s + 8 * h), acc[i][t]);
      }
    }
  }
}

template <DType T, int MR, int NT>
void qtile(const char* w0, int64_t rs, const QActPair* x, int64_t xstride, int64_t nb, float* y,
           int64_t ys) {
  using B = typename QBlock<T>::type;
  const B* rows[MR];
  for (int i = 0; i < MR; ++i) rows[i] = reinterpret_cast<const B*>(w0 + i * rs);
  __m256 acc[MR][NT];
  for (int i = 0; i < MR; ++i)
    for (int t = 0; t < NT; ++t) acc[i][t] = _mm256_setzero_ps();
  const int64_t full = nb / 2;
  for (int64_t p = 0; p < full; ++p) {
    // GEMV: prefetch the same bytes of the next row tile (as the AVX-512 kernel).
    if (NT == 1) {
      for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(rows[i] + 2 * p) + MR * rs, _MM_HINT_T0);
    }
    qpair_step<T, MR, NT, true>(rows, x, xstride, p, acc);
  }
  if (nb & 1) qpair_step<T, MR, NT, false>(rows, x, xstride, full, acc);
  for (int i = 0; i < MR; ++i)
    for (int t = 0; t < NT; ++t) y[t * ys + i] = hsum(acc[i][t]);
}

constexpr int kQMr = 4, kQNt = 2;
constexpr int64_t kQTokenBlock = 32;

template <DType T>
void qgemm_t(const WeightMatrix& w, const QActPair* xq, int64_t n, float* y, int64_t ys,
             int64_t r0, int64_t r1) {
  const int64_t rs = row_stride(w);
  const int64_t nb = w.cols / kQuantBlock;
  const int64_t np = qact_pairs(w.cols);
  const char* base = static_cast<const char*>(w.data);
  for (int64_t tb = 0; tb < n; tb += kQTokenBlock) {
    const int64_t te = tb + kQTokenBlock < n ? tb + kQTokenBlock : n;
    for (int64_t r = r0; r < r1; r += kQMr) {
      const int mr = static_cast<int>(r1 - r < kQMr ? r1 - r : kQMr);
      for (int64_t t = tb; t < te; t += kQNt) {
        const bool two = te - t >= 2;
        const QActPair* x = xq + t * np;
        float* yt = y + t * ys + r;
        const char* wr = base + r * rs;
        if (mr == 4) {
          two ? qtile<T, 4, 2>(wr, rs, x, np, nb, yt, ys) : qtile<T, 4, 1>(wr, rs, x, np, nb, yt, ys);
        } else {
          for (int i = 0; i < mr; ++i) {
            two ? qtile<T, 1, 2>(wr + i * rs, rs, x, np, nb, yt + i, ys)
                : qtile<T, 1, 1>(wr + i * rs, rs, x, np, nb, yt + i, ys);
          }
        }
      }
    }
  }
}

// Q4_1 in llama.cpp's exact f32 order (ref::q4_1_dot_ggml_order; x86 AVX2
// ggml_vec_dot_q4_1_q8_1): per (row, token) one 8-lane accumulator over the blocks in
// memory order, lane l = elements 4l..4l+3 of [low nibbles, high nibbles]; a scalar FMA
// chain for m_w * s_x; hsum_float_8 + summs. MR rows x NT tokens share the unpacked
// weights; every output keeps its own chain, so the tile shape changes no bit. Reads the
// Q8_1 blocks out of the QActPair layout (b0 = q[0..15] + q[32..47], d[0], s[0];
// b1 = q[16..31] + q[48..63], d[4], s[4]).
template <int MR, int NT>
void q41_ggml_tile(const BlockQ4_1* const* rows, const QActPair* x, int64_t xstride, int64_t nb,
                   float* y, int64_t ys) {
  const __m256i lo4 = _mm256_set1_epi8(0x0f);
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256 acc[MR][NT];
  float summs[MR][NT];
  for (int i = 0; i < MR; ++i)
    for (int t = 0; t < NT; ++t) acc[i][t] = _mm256_setzero_ps(), summs[i][t] = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t p = b >> 1;
    const int h = static_cast<int>(b & 1);
    __m256i qx[NT];
    float dx[NT], sx[NT];
    for (int t = 0; t < NT; ++t) {
      const QActPair& a = x[t * xstride + p];
      qx[t] = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.q + 32 + 16 * h)),
                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.q + 16 * h)));
      dx[t] = a.d[4 * h];
      sx[t] = a.s[4 * h];
    }
    for (int i = 0; i < MR; ++i) {
      const BlockQ4_1& wb = rows[i][b];
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.qs));
      const __m256i qw = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), lo4);
      const float dw = _cvtsh_ss(wb.d), mw = _cvtsh_ss(wb.m);  // F16C, exact as f16_to_f32
      for (int t = 0; t < NT; ++t) {
        summs[i][t] = std::fma(mw, sx[t], summs[i][t]);
        const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(qw, qx[t]), ones16);
        acc[i][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx[t]), _mm256_cvtepi32_ps(dot), acc[i][t]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int t = 0; t < NT; ++t) {
      __m128 r = _mm_add_ps(_mm256_extractf128_ps(acc[i][t], 1), _mm256_castps256_ps128(acc[i][t]));
      r = _mm_add_ps(r, _mm_movehl_ps(r, r));
      r = _mm_add_ss(r, _mm_movehdup_ps(r));
      y[t * ys + i] = _mm_cvtss_f32(r) + summs[i][t];
    }
}

void q41_ggml_rows(const WeightMatrix& w, const QActPair* xq, int64_t n, float* y, int64_t ys,
                   int64_t r0, int64_t r1) {
  const int64_t rs = row_stride(w);
  const int64_t nb = w.cols / kQuantBlock;
  const int64_t np = qact_pairs(w.cols);
  const char* base = static_cast<const char*>(w.data);
  for (int64_t tb = 0; tb < n; tb += kQTokenBlock) {
    const int64_t te = tb + kQTokenBlock < n ? tb + kQTokenBlock : n;
    for (int64_t r = r0; r < r1; r += kQMr) {
      const int mr = static_cast<int>(r1 - r < kQMr ? r1 - r : kQMr);
      const BlockQ4_1* rows[kQMr];
      for (int i = 0; i < mr; ++i) rows[i] = reinterpret_cast<const BlockQ4_1*>(base + (r + i) * rs);
      for (int64_t t = tb; t < te; t += kQNt) {
        const bool two = te - t >= 2;
        const QActPair* x = xq + t * np;
        float* yt = y + t * ys + r;
        if (mr == 4) {
          two ? q41_ggml_tile<4, 2>(rows, x, np, nb, yt, ys) : q41_ggml_tile<4, 1>(rows, x, np, nb, yt, ys);
        } else {
          for (int i = 0; i < mr; ++i)
            two ? q41_ggml_tile<1, 2>(rows + i, x, np, nb, yt + i, ys)
                : q41_ggml_tile<1, 1>(rows + i, x, np, nb, yt + i, ys);
        }
      }
    }
  }
}

// 6 W rows x 16 tokens (2 ymm): 12 accumulators + 2 x + 1 broadcast of 16 registers.
template <int MR>
void gemm_kernel(const float* wt, const float* xp, int64_t kc, float* out /*[MR][16]*/) {
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 x0 = _mm256_load_ps(xp + k * kGemmTokens);
    const __m256 x1 = _mm256_load_ps(xp + k * kGemmTokens + 8);
    for (int i = 0; i < MR; ++i) {
      const __m256 wb = _mm256_broadcast_ss(wt + i * kGemmKc + k);
      acc[i][0] = _mm256_fmadd_ps(wb, x0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(wb, x1, acc[i][1]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(out + i * 16, acc[i][0]);
    _mm256_storeu_ps(out + i * 16 + 8, acc[i][1]);
  }
}
constexpr int kMr = 6;
using GemmKernel = void (*)(const float*, const float*, int64_t, float*);
constexpr GemmKernel kKernels[kMr] = {gemm_kernel<1>, gemm_kernel<2>, gemm_kernel<3>,
                                      gemm_kernel<4>, gemm_kernel<5>, gemm_kernel<6>};

}  // namespace

void gemv_float(const WeightMatrix& w, const float* x, int64_t n, int64_t xs, float* y,
                int64_t ys, int64_t r0, int64_t r1) {
  switch (w.dtype) {
    case DType::kF32: return gemv_float_t<DType::kF32>(w, x, n, xs, y, ys, r0, r1);
    case DType::kF16: return gemv_float_t<DType::kF16>(w, x, n, xs, y, ys, r0, r1);
    case DType::kBF16: return gemv_float_t<DType::kBF16>(w, x, n, xs, y, ys, r0, r1);
    default: __builtin_trap();
  }
}

void qgemm_rows(const WeightMatrix& w, const QActPair* xq, int64_t n, float* y, int64_t ys,
                int64_t r0, int64_t r1) {
  switch (w.dtype) {
    case DType::kQ8_0: return qgemm_t<DType::kQ8_0>(w, xq, n, y, ys, r0, r1);
    case DType::kQ4_0: return qgemm_t<DType::kQ4_0>(w, xq, n, y, ys, r0, r1);
    case DType::kQ4_1: return q41_ggml_rows(w, xq, n, y, ys, r0, r1);  // llama.cpp's order
    default: __builtin_trap();
  }
}

void round_acts(DType wt, const float* x, float* out, int64_t n) {
  int64_t k = 0;
  if (wt == DType::kF16) {
    for (; k + 8 <= n; k += 8)
      _mm256_storeu_ps(out + k, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + k), _MM_FROUND_TO_NEAREST_INT)));
    for (; k < n; ++k) out[k] = f16_to_f32(f32_to_f16(x[k]));
  } else if (wt == DType::kBF16) {
    for (; k < n; ++k) out[k] = bf16_to_f32(f32_to_bf16(x[k]));
  } else {
    std::memcpy(out, x, n * sizeof(float));
  }
}

void gemm_pack_x(const float* x, int64_t n, int64_t xs, int64_t cols, float* xp) {
  const int64_t groups = (n + kGemmTokens - 1) / kGemmTokens;
  for (int64_t g = 0; g < groups; ++g) {
    float* dst = xp + g * cols * kGemmTokens;
    const int64_t t0 = g * kGemmTokens;
    const int64_t nt = n - t0 < kGemmTokens ? n - t0 : kGemmTokens;
    if (nt < kGemmTokens) std::memset(dst, 0, cols * kGemmTokens * sizeof(float));
    for (int64_t t = 0; t < nt; ++t) {
      const float* src = x + (t0 + t) * xs;
      for (int64_t k = 0; k < cols; ++k) dst[k * kGemmTokens + t] = src[k];
    }
  }
}

void dequantize_row(DType t, const void* src, float* out, int64_t n) {
  const char* s = static_cast<const char*>(src);
  switch (t) {
    case DType::kF32:
      std::memcpy(out, s, n * sizeof(float));
      return;
    case DType::kF16:
    case DType::kBF16: {
      int64_t k = 0;
      for (; k + 8 <= n; k += 8) {
        _mm256_storeu_ps(out + k, t == DType::kF16 ? load8<DType::kF16>(s, k) : load8<DType::kBF16>(s, k));
      }
      for (; k < n; ++k) out[k] = t == DType::kF16 ? load1<DType::kF16>(s, k) : load1<DType::kBF16>(s, k);
      return;
    }
    case DType::kQ8_0: {
      const auto* b = reinterpret_cast<const BlockQ8_0*>(s);
      for (int64_t j = 0; j < n / 32; ++j) {
        const float d = _cvtsh_ss(b[j].d);
        for (int i = 0; i < 32; ++i) out[32 * j + i] = d * b[j].qs[i];
      }
      return;
    }
    case DType::kQ4_0:
    case DType::kQ4_1: {
      const bool q41 = t == DType::kQ4_1;
      const int64_t bb = dtype_block_bytes(t);
      for (int64_t j = 0; j < n / 32; ++j) {
        const char* blk = s + j * bb;
        uint16_t dh, mh = 0;
        std::memcpy(&dh, blk, 2);
        if (q41) std::memcpy(&mh, blk + 2, 2);
        const float d = _cvtsh_ss(dh);
        const float m = q41 ? _cvtsh_ss(mh) : -8.0f * d;
        const auto* qs = reinterpret_cast<const uint8_t*>(blk + (q41 ? 4 : 2));
        for (int i = 0; i < 16; ++i) {
          out[32 * j + i] = d * (qs[i] & 0x0f) + m;
          out[32 * j + i + 16] = d * (qs[i] >> 4) + m;
        }
      }
      return;
    }
    default: __builtin_trap();
  }
}

void gemm_rows(const WeightMatrix& w, const float* xp, int64_t n, float* y, int64_t ys,
               int64_t r0, int64_t r1, float* scratch) {
  const int64_t rs = row_stride(w);
  const char* base = static_cast<const char*>(w.data);
  const int64_t K = w.cols;
  const int64_t groups = (n + kGemmTokens - 1) / kGemmTokens;
  const int64_t be = dtype_block_elems(w.dtype), bb = dtype_block_bytes(w.dtype);
  alignas(32) float out[kMr * 16];
  for (int64_t k0 = 0; k0 < K; k0 += kGemmKc) {
    const int64_t kc = K - k0 < kGemmKc ? K - k0 : kGemmKc;
    for (int64_t r = r0; r < r1; r += kMr) {
      const int mr = static_cast<int>(r1 - r < kMr ? r1 - r : kMr);
      for (int i = 0; i < mr; ++i) dequantize_row(w.dtype, base + (r + i) * rs + k0 / be * bb, scratch + i * kGemmKc, kc);
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t half = 0; half < 2; ++half) {
          const int64_t t0 = g * kGemmTokens + 16 * half;
          if (t0 >= n) break;
          const int64_t nt = n - t0 < 16 ? n - t0 : 16;
          kKernels[mr - 1](scratch, xp + g * K * kGemmTokens + k0 * kGemmTokens + 16 * half, kc, out);
          for (int i = 0; i < mr; ++i) {
            float* yr = y + t0 * ys + r + i;
            const float* o = out + i * 16;
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
}

}  // namespace tessera::kernels::avx2
