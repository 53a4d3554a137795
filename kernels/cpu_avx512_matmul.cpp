// AVX-512 (F/BW/VL + VNNI) matmul: decode GEMV per weight dtype and the packed GEMM.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c; only called
// when active_isa() >= kAvx512.
#include <immintrin.h>

#include <cstring>
#include <utility>

#include "kernels/fp16.h"
#include "kernels/isa_kernels.h"

namespace tessera::kernels::avx512 {
namespace {

int64_t row_stride(const WeightMatrix& w) {
  return w.row_stride ? w.row_stride : dtype_row_bytes(w.dtype, w.cols);
}

// ---- float-type weights: 16 elements of row `row` starting at element k ----

template <DType T>
inline __m512 load_w(const char* row, int64_t k) {
  if constexpr (T == DType::kF32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (T == DType::kF16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <DType T>
inline __m512 load_w_mask(const char* row, int64_t k, __mmask16 m) {
  if constexpr (T == DType::kF32) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + k);
  } else if constexpr (T == DType::kF16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * k));
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, row + 2 * k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// The four horizontal sums of a[0..3] as one xmm (lane i = sum of a[i]): the halves of
// each zmm added, then two rounds of hadd, then the two 128-bit halves: ~19 ops where
// four _mm512_reduce_add_ps take ~32. With rows of 576 (SmolLM2) a 4-row x 5-token tile
// spends ~1/5 of its time in these sums.
inline __m128 reduce4(const __m512 (&a)[4]) {
  __m256 v[4];
  for (int i = 0; i < 4; ++i) v[i] = _mm256_add_ps(_mm512_castps512_ps256(a[i]), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[i]), 1)));
  const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

// out[t*R + i] = row i . x_t for R rows and NT tokens; weights stream once for all NT.
template <DType T, int NT, int R>
void gemv_tile(const char* w0, int64_t rs, const float* x, int64_t xs, int64_t K, float* out) {
  __m512 acc[NT][R];
  for (int t = 0; t < NT; ++t)
    for (int i = 0; i < R; ++i) acc[t][i] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 xv[NT];
    for (int t = 0; t < NT; ++t) xv[t] = _mm512_loadu_ps(x + t * xs + k);
    for (int i = 0; i < R; ++i) {
      const __m512 wv = load_w<T>(w0 + i * rs, k);
      for (int t = 0; t < NT; ++t) acc[t][i] = _mm512_fmadd_ps(wv, xv[t], acc[t][i]);
    }
  }
  if (k < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1);
    __m512 xv[NT];
    for (int t = 0; t < NT; ++t) xv[t] = _mm512_maskz_loadu_ps(m, x + t * xs + k);
    for (int i = 0; i < R; ++i) {
      const __m512 wv = load_w_mask<T>(w0 + i * rs, k, m);
      for (int t = 0; t < NT; ++t) acc[t][i] = _mm512_fmadd_ps(wv, xv[t], acc[t][i]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    if constexpr (R == 4) {
      _mm_storeu_ps(out + t * R, reduce4(acc[t]));
    } else {
      for (int i = 0; i < R; ++i) out[t * R + i] = _mm512_reduce_add_ps(acc[t][i]);
    }
  }
}

// Largest token chunk of one gemv_tile pass: R = 4 rows x 5 tokens is 20 accumulators
// + 5 x vectors + 1 W vector of the 32 zmm.
constexpr int kGemvMaxNt = 5;

// Token chunks for n tokens: the fewest chunks of <= kGemvMaxNt, balanced (5 = 5,
// 6 = 3 + 3, 9 = 5 + 4), so each W vector is converted once per chunk. Computed once
// per matmul (no divisions in the row loop). Returns the chunk count.
constexpr int kGemvMaxChunks = 8;  // n <= 40; larger n never takes the GEMV
inline int plan_chunks(int64_t n, int (&nt)[kGemvMaxChunks]) {
  const int chunks = static_cast<int>((n + kGemvMaxNt - 1) / kGemvMaxNt);
  // chunk c gets n / chunks tokens, the first n % chunks one more
  for (int c = 0; c < chunks; ++c) nt[c] = static_cast<int>(n / chunks + (c < n % chunks ? 1 : 0));
  return chunks;
}

// y[t*ys + i] = row i . x_t for R rows (w0, rs bytes apart) and all tokens of the chunk
// plan. The R rows come from memory once: every chunk after the first re-reads them
// from L1/L2 (4 rows of 2048 f32 are 32 KiB), so a verify step of n tokens streams W
// once, as a one-token decode step does.
template <DType T, int R>
void gemv_rows(const char* w0, int64_t rs, const float* x, const int* nts, int chunks, int64_t xs, int64_t K,
               float* y, int64_t ys) {
  float out[kGemvMaxNt * R];
  int64_t t = 0;
  for (int c = 0; c < chunks; ++c) {
    const int nt = nts[c];
    const float* xt = x + t * xs;
    switch (nt) {
      case 5: gemv_tile<T, 5, R>(w0, rs, xt, xs, K, out); break;
      case 4: gemv_tile<T, 4, R>(w0, rs, xt, xs, K, out); break;
      case 3: gemv_tile<T, 3, R>(w0, rs, xt, xs, K, out); break;
      case 2: gemv_tile<T, 2, R>(w0, rs, xt, xs, K, out); break;
      default: gemv_tile<T, 1, R>(w0, rs, xt, xs, K, out); break;
    }
    for (int j = 0; j < nt; ++j)
      for (int i = 0; i < R; ++i) y[(t + j) * ys + i] = out[j * R + i];
    t += nt;
  }
}

template <DType T>
void gemv_float_t(const WeightMatrix& w, const float* x, int64_t n, int64_t xs, float* y,
                  int64_t ys, int64_t r0, int64_t r1) {
  constexpr int R = 4;
  const int64_t rs = row_stride(w);
  const char* base = static_cast<const char*>(w.data);
  int nts[kGemvMaxChunks];
  for (int64_t t0 = 0; t0 < n; t0 += kGemvMaxNt * kGemvMaxChunks) {  // one pass for n <= 40
    const int64_t nn = n - t0 < kGemvMaxNt * kGemvMaxChunks ? n - t0 : kGemvMaxNt * kGemvMaxChunks;
    const int chunks = plan_chunks(nn, nts);
    const float* xt = x + t0 * xs;
    float* yt = y + t0 * ys;
    int64_t r = r0;
    for (; r + R <= r1; r += R) gemv_rows<T, R>(base + r * rs, rs, xt, nts, chunks, xs, w.cols, yt + r, ys);
    for (; r < r1; ++r) gemv_rows<T, 1>(base + r * rs, rs, xt, nts, chunks, xs, w.cols, yt + r, ys);
  }
}

// ---- block-quantised weights, int8 activations, VNNI ----

template <DType T>
struct QBlock;
template <> struct QBlock<DType::kQ8_0> { using type = BlockQ8_0; };
template <> struct QBlock<DType::kQ4_0> { using type = BlockQ4_0; };
template <> struct QBlock<DType::kQ4_1> { using type = BlockQ4_1; };

// The int8 kernels below serve decode (n < 8) and prefill alike: one register-tiled
// kernel of MR W rows x NT tokens over the whole K, two 32-blocks per zmm (QActPair).
// Per pair, row i: load + unpack W (Q4: one shift, no shuffle), per-lane scales; per
// (row, token): one vpdpbusd, one convert, one multiply of the scales, one FMA.

// One pair of W blocks, loaded whole and rearranged with 16-bit permutes (every field of
// the Q4_0 / Q4_1 / Q8_0 blocks sits at an even byte offset): the quants as unsigned
// bytes in the QActPair order, and the per-lane scales d (and Q4_1's m) from the same
// registers. Masked loads never touch bytes past the pair (or past block 0 when kHas1
// is false), so the last row of a matrix is safe.
template <int... I>
inline __m512i words(std::integer_sequence<int, I...>) {
  alignas(64) static constexpr uint16_t v[32] = {static_cast<uint16_t>(I)...};
  return _mm512_load_si512(v);
}
template <int... I>
using W32 = std::integer_sequence<int, I...>;

template <DType T, bool kHas1>
__attribute__((always_inline)) inline void load_pair(const typename QBlock<T>::type* b, __m512i* wq,
                                                     __m512* dw, __m512* mw) {
  if constexpr (T == DType::kQ8_0) {
    // A = bytes 0..63 of the pair (d0, qs0, d1, qs1[0..29]); B = block 1 (d1, qs1).
    const __m512i a = kHas1 ? _mm512_loadu_si512(b) : _mm512_maskz_loadu_epi16(0x1ffff, b);
    const __m512i c = kHas1 ? _mm512_maskz_loadu_epi16(0x1ffff, b + 1) : _mm512_setzero_si512();
    const __m512i qi = words(W32<1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 33, 34, 35, 36,
                                 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48>{});
    const __m512i di = words(W32<0, 0, 0, 0, 0, 0, 0, 0, 32, 32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0,
                                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0>{});
    *wq = _mm512_xor_si512(_mm512_permutex2var_epi16(a, qi, c), _mm512_set1_epi8(static_cast<char>(0x80)));
    *dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(a, di, c)));
  } else if constexpr (T == DType::kQ4_0) {
    const __m512i z = _mm512_maskz_loadu_epi16(kHas1 ? 0x3ffff : 0x1ff, b);
    const __m512i qi = words(W32<1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 1, 2, 3, 4, 5,
                                 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17>{});
    const __m512i sh = words(W32<0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4,
                                 4, 4, 4, 4, 4, 4, 4, 4, 4>{});
    const __m512i di = words(W32<0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0,
                                 0, 0, 0, 0, 0, 0, 0, 0, 0>{});
    // Low nibbles of both blocks in the low half, high nibbles (a 256-bit shift, which
    // can issue on port 1, unlike a 512-bit one) in the high half.
    const __m256i q = _mm512_castsi512_si256(_mm512_permutexvar_epi16(qi, z));
    *wq = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1),
                           _mm512_set1_epi8(0x0f));
    (void)sh;
    *dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(di, z)));
  } else {
    const __m512i z = _mm512_maskz_loadu_epi16(kHas1 ? 0xfffff : 0x3ff, b);
    const __m512i qi = words(W32<2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19, 2, 3, 4, 5, 6,
                                 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19>{});
    const __m512i sh = words(W32<0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4,
                                 4, 4, 4, 4, 4, 4, 4, 4, 4>{});
    const __m512i di = words(W32<0, 0, 0, 0, 10, 10, 10, 10, 0, 0, 0, 0, 10, 10, 10, 10, 1, 1, 1, 1,
                                 11, 11, 11, 11, 1, 1, 1, 1, 11, 11, 11, 11>{});
    *wq = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi16(qi, z), sh), _mm512_set1_epi8(0x0f));
    const __m512i dm = _mm512_permutexvar_epi16(di, z);
    *dw = _mm512_cvtph_ps(_mm512_castsi512_si256(dm));
    *mw = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(dm, 1));
  }
}

// kPrefetch: prefetch the same bytes of the next row tile (pf bytes ahead) - W rows are
// short next to a page, so the hardware streamers ramp up too late for GEMV.
template <DType T, int MR, int NT, bool kHas1, bool kPrefetch = false>
__attribute__((always_inline)) inline void qpair_step(const typename QBlock<T>::type* const* rows,
                                                      const QActPair* x, int64_t xstride,
                                                      int64_t p, __m512 (&acc)[MR][NT],
                                                      int64_t pf = 0) {
  __m512i xq[NT];
  __m512 xd[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = _mm512_load_si512(x[t * xstride + p].q);
    xd[t] = _mm512_load_ps(x[t * xstride + p].d);
  }
  for (int i = 0; i < MR; ++i) {
    __m512i wq;
    __m512 dw, mw;
    if constexpr (kPrefetch) _mm_prefetch(reinterpret_cast<const char*>(rows[i] + 2 * p) + pf, _MM_HINT_T0);
    load_pair<T, kHas1>(rows[i] + 2 * p, &wq, &dw, &mw);
    for (int t = 0; t < NT; ++t) {
      const QActPair& a = x[t * xstride + p];
      __m512i dot;
      if constexpr (T == DType::kQ4_1) {
        dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, xq[t]);
      } else {
        dot = _mm512_dpbusd_epi32(_mm512_load_si512(a.corr), wq, xq[t]);
      }
      acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, xd[t]), acc[i][t]);
      if constexpr (T == DType::kQ4_1) acc[i][t] = _mm512_fmadd_ps(mw, _mm512_load_ps(a.s), acc[i][t]);
    }
  }
}

// y[t*ys + i] = row i . x_t, i < MR, t < NT.
template <DType T, int MR, int NT>
void qtile(const char* w0, int64_t rs, const QActPair* x, int64_t xstride, int64_t nb, float* y,
           int64_t ys) {
  using B = typename QBlock<T>::type;
  const B* rows[MR];
  for (int i = 0; i < MR; ++i) rows[i] = reinterpret_cast<const B*>(w0 + i * rs);
  __m512 acc[MR][NT];
  for (int i = 0; i < MR; ++i)
    for (int t = 0; t < NT; ++t) acc[i][t] = _mm512_setzero_ps();
  const int64_t full = nb / 2;
  if (NT == 1) {
    for (int64_t p = 0; p < full; ++p) qpair_step<T, MR, NT, true, true>(rows, x, xstride, p, acc, MR * rs);
  } else {
    for (int64_t p = 0; p < full; ++p) qpair_step<T, MR, NT, true>(rows, x, xstride, p, acc);
  }
  if (nb & 1) {
    // Separate accumulators for the half pair keep GCC from moving acc to the stack.
    __m512 tail[MR][NT];
    for (int i = 0; i < MR; ++i)
      for (int t = 0; t < NT; ++t) tail[i][t] = _mm512_setzero_ps();
    qpair_step<T, MR, NT, false>(rows, x, xstride, full, tail);
    for (int i = 0; i < MR; ++i)
      for (int t = 0; t < NT; ++t) acc[i][t] = _mm512_add_ps(acc[i][t], tail[i][t]);
  }
  for (int i = 0; i < MR; ++i)
    for (int t = 0; t < NT; ++t) y[t * ys + i] = _mm512_reduce_add_ps(acc[i][t]);
}

// Decode (one token) on Q4_0 / Q4_1, 4 rows: as qpair_step, but the 8 W scales of the
// 4 rows (d of blocks b0, b1) are gathered into one vector, converted once and
// multiplied by the token's (d_x0, d_x1) once, then spread per row with vpermps (port
// 5) - instead of a vcvtph2ps and a vmulps per row on port 0, the bottleneck. Q4_1's
// m_w s_x terms of all 4 rows go into one 8-lane accumulator the same way.
template <DType T, bool kHas1>
__attribute__((always_inline)) inline void q4_gemv_step(const typename QBlock<T>::type* const* rows,
                                                        const QActPair& a, int64_t p, int64_t pf,
                                                        __m512 (&acc)[4], __m256& macc) {
  constexpr bool q41 = T == DType::kQ4_1;
  constexpr int dw1 = q41 ? 10 : 9;  // word of d1 (d0 is word 0); Q4_1: m0 word 1, m1 word 11
  constexpr __mmask32 lm = q41 ? (kHas1 ? 0xfffff : 0x3ff) : (kHas1 ? 0x3ffff : 0x1ff);
  __m512i z[4];
  for (int i = 0; i < 4; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(rows[i] + 2 * p) + pf, _MM_HINT_T0);
    z[i] = _mm512_maskz_loadu_epi16(lm, rows[i] + 2 * p);
  }
  // [d0 d1 (m0 m1)] of rows 0,1 and 2,3, then all 4 rows: r0d0 r0d1 r1d0 r1d1 ... r3d1
  const __m512i i01 = q41 ? words(W32<0, 10, 32, 42, 1, 11, 33, 43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0>{})
                          : words(W32<0, 9, 32, 41, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                      0, 0, 0, 0, 0, 0, 0, 0, 0>{});
  const __m512i s01 = _mm512_permutex2var_epi16(z[0], i01, z[1]);
  const __m512i s23 = _mm512_permutex2var_epi16(z[2], i01, z[3]);
  const __m512i iall = words(W32<0, 1, 2, 3, 32, 33, 34, 35, 4, 5, 6, 7, 36, 37, 38, 39, 0, 0, 0, 0, 0, 0, 0, 0,
                                 0, 0, 0, 0, 0, 0, 0, 0>{});
  const __m512i sall = _mm512_permutex2var_epi16(s01, iall, s23);
  (void)dw1;
  // x scales as (dx0, dx1) repeated: QActPair d holds dx0 in lane 0, dx1 in lane 4.
  const __m256 dxx = _mm256_permutevar8x32_ps(_mm256_load_ps(a.d), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
  const __m256 dd = _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(sall)), dxx);
  const __m512 ddz = _mm512_castps256_ps512(dd);
  if constexpr (q41) {
    const __m256 sxx = _mm256_permutevar8x32_ps(_mm256_load_ps(a.s), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
    macc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(_mm512_castsi512_si256(sall), 1)), sxx, macc);
  }
  const __m512i xq = _mm512_load_si512(a.q);
  const __m512i corr = _mm512_load_si512(a.corr);
  const __m512i qi = q41 ? words(W32<2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19, 2, 3, 4, 5, 6, 7, 8,
                                     9, 12, 13, 14, 15, 16, 17, 18, 19>{})
                         : words(W32<1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 1, 2, 3, 4, 5, 6, 7,
                                     8, 10, 11, 12, 13, 14, 15, 16, 17>{});
  for (int i = 0; i < 4; ++i) {
    const __m256i q = _mm512_castsi512_si256(_mm512_permutexvar_epi16(qi, z[i]));
    const __m512i wq = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1),
                                        _mm512_set1_epi8(0x0f));
    // lanes 0-3, 8-11: b0 (element 2i), lanes 4-7, 12-15: b1 (element 2i+1)
    const __m512i li = _mm512_setr_epi32(2 * i, 2 * i, 2 * i, 2 * i, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1,
                                         2 * i, 2 * i, 2 * i, 2 * i, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1);
    const __m512 sc = _mm512_permutexvar_ps(li, ddz);
    const __m512i dot = q41 ? _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, xq) : _mm512_dpbusd_epi32(corr, wq, xq);
    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[i]);
  }
}

template <DType T>
void q4_gemv_tile(const char* w0, int64_t rs, const QActPair* x, int64_t nb, float* y) {
  using B = typename QBlock<T>::type;
  const B* rows[4];
  for (int i = 0; i < 4; ++i) rows[i] = reinterpret_cast<const B*>(w0 + i * rs);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  __m256 macc = _mm256_setzero_ps();
  const int64_t full = nb / 2;
  for (int64_t p = 0; p < full; ++p) q4_gemv_step<T, true>(rows, x[p], p, 4 * rs, acc, macc);
  if (nb & 1) {
    __m512 tail[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    q4_gemv_step<T, false>(rows, x[full], full, 4 * rs, tail, macc);
    for (int i = 0; i < 4; ++i) acc[i] = _mm512_add_ps(acc[i], tail[i]);
  }
  // macc lanes (2i, 2i + 1) belong to row i.
  alignas(32) float m[8];
  _mm256_store_ps(m, macc);
  const __m128 sums = reduce4(acc);
  _mm_storeu_ps(y, _mm_add_ps(sums, _mm_setr_ps(m[0] + m[1], m[2] + m[3], m[4] + m[5], m[6] + m[7])));
}

// Decode (one token) on Q8_0, 4 rows: the same scale gathering as q4_gemv_step. Per
// row and block pair the generic step spends a second vpermt2w (the scales), a
// vcvtph2ps and a vmulps on the scales; here the 8 scales of the 4 rows (d0 in word 0,
// d1 in word 17 of each row's first 64 bytes) are gathered with two vpermt2w, converted
// and multiplied by (d_x0, d_x1) once, then spread per row with vpermps.
template <bool kHas1>
__attribute__((always_inline)) inline void q8_gemv_step(const BlockQ8_0* const* rows, const QActPair& a,
                                                        int64_t p, int64_t pf, __m512 (&acc)[4]) {
  __m512i lo[4], hi[4];
  for (int i = 0; i < 4; ++i) {
    const BlockQ8_0* b = rows[i] + 2 * p;
    _mm_prefetch(reinterpret_cast<const char*>(b) + pf, _MM_HINT_T0);
    // lo = bytes 0..63 of the pair (d0, qs0, d1, qs1[0..29]); hi = block 1 (d1, qs1).
    lo[i] = kHas1 ? _mm512_loadu_si512(b) : _mm512_maskz_loadu_epi16(0x1ffff, b);
    hi[i] = kHas1 ? _mm512_maskz_loadu_epi16(0x1ffff, b + 1) : _mm512_setzero_si512();
  }
  // r0d0 r0d1 r1d0 r1d1 | r2d0 r2d1 r3d0 r3d1 (a missing block 1 reads as 0 from word 17)
  const __m512i i01 = words(W32<0, 17, 32, 49, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                0, 0, 0, 0, 0, 0, 0>{});
  const __m512i s01 = _mm512_permutex2var_epi16(lo[0], i01, lo[1]);
  const __m512i s23 = _mm512_permutex2var_epi16(lo[2], i01, lo[3]);
  const __m512i iall = words(W32<0, 1, 2, 3, 32, 33, 34, 35, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                 0, 0, 0, 0, 0, 0, 0>{});
  const __m512i sall = _mm512_permutex2var_epi16(s01, iall, s23);
  // x scales (dx0, dx1) repeated: a Q8_0 QActPair holds dx0 in lanes 0-7, dx1 in 8-15.
  const __m512 dxv = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 8, 0, 8, 0, 8, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0),
                                           _mm512_load_ps(a.d));
  const __m256 dd = _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(sall)), _mm512_castps512_ps256(dxv));
  const __m512 ddz = _mm512_castps256_ps512(dd);
  const __m512i xq = _mm512_load_si512(a.q);
  const __m512i corr = _mm512_load_si512(a.corr);
  const __m512i qi = words(W32<1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 33, 34, 35, 36, 37, 38, 39,
                               40, 41, 42, 43, 44, 45, 46, 47, 48>{});
  for (int i = 0; i < 4; ++i) {
    const __m512i wq = _mm512_xor_si512(_mm512_permutex2var_epi16(lo[i], qi, hi[i]),
                                        _mm512_set1_epi8(static_cast<char>(0x80)));
    // lanes 0-7: block 0 (element 2i of dd), lanes 8-15: block 1 (element 2i+1)
    const __m512i li = _mm512_setr_epi32(2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i + 1,
                                         2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1);
    const __m512 sc = _mm512_permutexvar_ps(li, ddz);
    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr, wq, xq)), sc, acc[i]);
  }
}

void q8_gemv_tile(const char* w0, int64_t rs, const QActPair* x, int64_t nb, float* y) {
  const BlockQ8_0* rows[4];
  for (int i = 0; i < 4; ++i) rows[i] = reinterpret_cast<const BlockQ8_0*>(w0 + i * rs);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const int64_t full = nb / 2;
  for (int64_t p = 0; p < full; ++p) q8_gemv_step<true>(rows, x[p], p, 4 * rs, acc);
  if (nb & 1) {
    __m512 tail[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    q8_gemv_step<false>(rows, x[full], full, 4 * rs, tail);
    for (int i = 0; i < 4; ++i) acc[i] = _mm512_add_ps(acc[i], tail[i]);
  }
  _mm_storeu_ps(y, reduce4(acc));
}

template <DType T, int MR>
void qtile_nt(int nt, const char* w0, int64_t rs, const QActPair* x, int64_t xstride, int64_t nb,
              float* y, int64_t ys) {
  switch (nt) {
    case 4: return qtile<T, MR, 4>(w0, rs, x, xstride, nb, y, ys);
    case 3: return qtile<T, MR, 3>(w0, rs, x, xstride, nb, y, ys);
    case 2: return qtile<T, MR, 2>(w0, rs, x, xstride, nb, y, ys);
    default: return qtile<T, MR, 1>(w0, rs, x, xstride, nb, y, ys);
  }
}

constexpr int kQMr = 4, kQNt = 4;
constexpr int64_t kQTokenBlock = 32;  // tokens whose packed x stays in L2 while W streams

template <DType T>
void qgemm_t(const WeightMatrix& w, const QActPair* xq, int64_t n, float* y, int64_t ys,
             int64_t r0, int64_t r1) {
  const int64_t rs = row_stride(w);
  const int64_t nb = w.cols / kQuantBlock;
  const int64_t np = qact_pairs(w.cols);
  const char* base = static_cast<const char*>(w.data);
  int64_t rstart = r0;
  if (n == 1) {
    if constexpr (T == DType::kQ8_0) {
      for (; rstart + 4 <= r1; rstart += 4) q8_gemv_tile(base + rstart * rs, rs, xq, nb, y + rstart);
    } else {
      for (; rstart + 4 <= r1; rstart += 4) q4_gemv_tile<T>(base + rstart * rs, rs, xq, nb, y + rstart);
    }
  }
  for (int64_t tb = 0; tb < n; tb += kQTokenBlock) {
    const int64_t te = tb + kQTokenBlock < n ? tb + kQTokenBlock : n;
    for (int64_t r = rstart; r < r1; r += kQMr) {
      const int mr = static_cast<int>(r1 - r < kQMr ? r1 - r : kQMr);
      for (int64_t t = tb; t < te; t += kQNt) {
        const int nt = static_cast<int>(te - t < kQNt ? te - t : kQNt);
        const QActPair* x = xq + t * np;
        float* yt = y + t * ys + r;
        switch (mr) {
          case 4: qtile_nt<T, 4>(nt, base + r * rs, rs, x, np, nb, yt, ys); break;
          case 3: qtile_nt<T, 3>(nt, base + r * rs, rs, x, np, nb, yt, ys); break;
          case 2: qtile_nt<T, 2>(nt, base + r * rs, rs, x, np, nb, yt, ys); break;
          default: qtile_nt<T, 1>(nt, base + r * rs, rs, x, np, nb, yt, ys); break;
        }
      }
    }
  }
}

// ---- dequantisation to f32 (GEMM tiles, dequantize_row) ----

template <DType T>
void dequant_t(const char* src, float* out, int64_t n) {
  if constexpr (T == DType::kF32) {
    std::memcpy(out, src, n * sizeof(float));
  } else if constexpr (T == DType::kF16 || T == DType::kBF16) {
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(out + k, load_w<T>(src, k));
    if (k < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - k)) - 1);
      _mm512_mask_storeu_ps(out + k, m, load_w_mask<T>(src, k, m));
    }
  } else {
    using B = typename QBlock<T>::type;
    const B* b = reinterpret_cast<const B*>(src);
    for (int64_t j = 0; j < n / 32; ++j) {
      const __m512 d = _mm512_set1_ps(_cvtsh_ss(b[j].d));
      __m512i lo, hi;
      if constexpr (T == DType::kQ8_0) {
        lo = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[j].qs)));
        hi = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[j].qs + 16)));
      } else {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[j].qs));
        const __m128i mask = _mm_set1_epi8(0x0f);
        lo = _mm512_cvtepu8_epi32(_mm_and_si128(q, mask));
        hi = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), mask));
      }
      __m512 flo = _mm512_cvtepi32_ps(lo), fhi = _mm512_cvtepi32_ps(hi);
      if constexpr (T == DType::kQ4_0) {
        const __m512 eight = _mm512_set1_ps(8.0f);
        flo = _mm512_sub_ps(flo, eight);
        fhi = _mm512_sub_ps(fhi, eight);
      }
      if constexpr (T == DType::kQ4_1) {
        const __m512 m = _mm512_set1_ps(_cvtsh_ss(b[j].m));
        _mm512_storeu_ps(out + 32 * j, _mm512_fmadd_ps(flo, d, m));
        _mm512_storeu_ps(out + 32 * j + 16, _mm512_fmadd_ps(fhi, d, m));
      } else {
        _mm512_storeu_ps(out + 32 * j, _mm512_mul_ps(flo, d));
        _mm512_storeu_ps(out + 32 * j + 16, _mm512_mul_ps(fhi, d));
      }
    }
  }
}

using DequantFn = void (*)(const char*, float*, int64_t);
DequantFn dequant_fn(DType t) {
  switch (t) {
    case DType::kF32: return dequant_t<DType::kF32>;
    case DType::kF16: return dequant_t<DType::kF16>;
    case DType::kBF16: return dequant_t<DType::kBF16>;
    case DType::kQ8_0: return dequant_t<DType::kQ8_0>;
    case DType::kQ4_0: return dequant_t<DType::kQ4_0>;
    case DType::kQ4_1: return dequant_t<DType::kQ4_1>;
    default: return nullptr;
  }
}

// ---- GEMM micro-kernel ----
//
// Tokens are the vector dimension (NV zmm = 16*NV tokens), W rows are broadcast: the
// MR x kc tile of W sits in scratch with rows kGemmKc floats apart, so every broadcast
// is an embedded-broadcast memory operand at a constant displacement. MR=12, NV=2 holds
// 24 accumulators; per k: 2 loads of x, 12 broadcasts, 24 FMAs.
template <int MR, int NV>
void gemm_kernel(const float* wt, const float* xp, int64_t kc, float* out /*[MR][32]*/) {
  __m512 acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512 xv[NV];
    for (int v = 0; v < NV; ++v) xv[v] = _mm512_load_ps(xp + k * kGemmTokens + 16 * v);
    for (int i = 0; i < MR; ++i) {
      const __m512 wb = _mm512_set1_ps(wt[i * kGemmKc + k]);
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(wb, xv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) _mm512_store_ps(out + i * kGemmTokens + 16 * v, acc[i][v]);
}

using GemmKernel = void (*)(const float*, const float*, int64_t, float*);

template <int NV, int... M>
constexpr GemmKernel pick_kernel(int mr, std::integer_sequence<int, M...>) {
  GemmKernel k = nullptr;
  ((k = (mr == M + 1) ? gemm_kernel<M + 1, NV> : k), ...);
  return k;
}

GemmKernel gemm_kernel_for(int mr, int nv) {
  return nv == 1 ? pick_kernel<1>(mr, std::make_integer_sequence<int, kGemmMaxMr>{})
                 : pick_kernel<2>(mr, std::make_integer_sequence<int, kGemmMaxMr>{});
}

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

void quantize_acts(DType wt, const float* x, int64_t cols, QActPair* out) {
  const int64_t nb = cols / kQuantBlock, np = qact_pairs(cols);
  const bool q4 = wt != DType::kQ8_0;
  const int32_t off = wt == DType::kQ8_0 ? -128 : (wt == DType::kQ4_0 ? -8 : 0);
  for (int64_t p = 0; p < np; ++p) {
    QActPair& o = out[p];
    __m512 dv = _mm512_setzero_ps(), sv = _mm512_setzero_ps();
    __m128i qs[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    for (int h = 0; h < 2; ++h) {
      const int64_t b = 2 * p + h;
      if (b >= nb) break;
      const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
      const float d = amax / 127.0f;
      const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
      // cvtps rounds with MXCSR's default mode: to nearest even, as llama.cpp's x86 path.
      const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, id));
      const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, id));
      const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
      const float dh = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
      const float sh = _cvtsh_ss(_cvtss_sh(d * static_cast<float>(sum), _MM_FROUND_TO_NEAREST_INT));
      const __m128i q0 = _mm512_cvtsepi32_epi8(i0), q1 = _mm512_cvtsepi32_epi8(i1);
      if (!q4) {
        qs[2 * h] = q0;
        qs[2 * h + 1] = q1;
        dv = _mm512_mask_blend_ps(h ? 0xff00 : 0x00ff, dv, _mm512_set1_ps(dh));
      } else {
        qs[h] = q0;
        qs[2 + h] = q1;
        dv = _mm512_mask_blend_ps(h ? 0xf0f0 : 0x0f0f, dv, _mm512_set1_ps(dh));
        sv = _mm512_mask_blend_ps(static_cast<__mmask16>(1u << (4 * h)), sv, _mm512_set1_ps(sh));
      }
    }
    const __m512i q = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_set_m128i(qs[1], qs[0])), _mm256_set_m128i(qs[3], qs[2]), 1);
    _mm512_store_si512(o.q, q);
    const __m512i sum4 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), q);
    _mm512_store_si512(o.corr, _mm512_mullo_epi32(sum4, _mm512_set1_epi32(off)));
    _mm512_store_ps(o.d, dv);
    _mm512_store_ps(o.s, sv);
  }
}

void qgemm_rows(const WeightMatrix& w, const QActPair* xq, int64_t n, float* y, int64_t ys,
                int64_t r0, int64_t r1) {
  switch (w.dtype) {
    case DType::kQ8_0: return qgemm_t<DType::kQ8_0>(w, xq, n, y, ys, r0, r1);
    case DType::kQ4_0: return qgemm_t<DType::kQ4_0>(w, xq, n, y, ys, r0, r1);
    case DType::kQ4_1: return qgemm_t<DType::kQ4_1>(w, xq, n, y, ys, r0, r1);
    default: __builtin_trap();
  }
}

void round_acts(DType wt, const float* x, float* out, int64_t n) {
  int64_t k = 0;
  if (wt == DType::kF16) {
    for (; k + 16 <= n; k += 16)
      _mm512_storeu_ps(out + k, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + k), _MM_FROUND_TO_NEAREST_INT)));
    for (; k < n; ++k) out[k] = f16_to_f32(f32_to_f16(x[k]));
  } else if (wt == DType::kBF16) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    const __m512i hi = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
    for (; k + 16 <= n; k += 16) {
      const __m512i u = _mm512_castps_si512(_mm512_loadu_ps(x + k));
      const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
      __m512i r = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(bias, lsb)), hi);
      // NaN: keep it a (quiet) NaN instead of rounding into inf.
      const __mmask16 nan = _mm512_cmp_ps_mask(_mm512_castsi512_ps(u), _mm512_castsi512_ps(u), _CMP_UNORD_Q);
      r = _mm512_mask_or_epi32(r, nan, _mm512_and_si512(u, hi), _mm512_set1_epi32(0x00400000));
      _mm512_storeu_ps(out + k, _mm512_castsi512_ps(r));
    }
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
    // Transpose 16 k at a time per token: contiguous reads, strided 4-byte writes are
    // cheap next to the GEMM itself (x is tiny next to W).
    for (int64_t t = 0; t < nt; ++t) {
      const float* src = x + (t0 + t) * xs;
      for (int64_t k = 0; k < cols; ++k) dst[k * kGemmTokens + t] = src[k];
    }
  }
}

void gemm_rows(const WeightMatrix& w, const float* xp, int64_t n, float* y, int64_t ys,
               int64_t r0, int64_t r1, float* scratch) {
  const int64_t rs = row_stride(w);
  const char* base = static_cast<const char*>(w.data);
  const int64_t K = w.cols;
  const int64_t groups = (n + kGemmTokens - 1) / kGemmTokens;
  const DequantFn deq = dequant_fn(w.dtype);
  const int64_t be = dtype_block_elems(w.dtype);
  const int64_t bb = dtype_block_bytes(w.dtype);
  alignas(64) float out[kGemmMaxMr * kGemmTokens];
  for (int64_t k0 = 0; k0 < K; k0 += kGemmKc) {
    const int64_t kc = K - k0 < kGemmKc ? K - k0 : kGemmKc;  // a multiple of be
    for (int64_t r = r0; r < r1; r += kGemmMaxMr) {
      const int mr = static_cast<int>(r1 - r < kGemmMaxMr ? r1 - r : kGemmMaxMr);
      for (int i = 0; i < mr; ++i) deq(base + (r + i) * rs + k0 / be * bb, scratch + i * kGemmKc, kc);
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t t0 = g * kGemmTokens;
        const int64_t nt = n - t0 < kGemmTokens ? n - t0 : kGemmTokens;
        const int nv = nt > 16 ? 2 : 1;
        gemm_kernel_for(mr, nv)(scratch, xp + g * K * kGemmTokens + k0 * kGemmTokens, kc, out);
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

void dequantize_row(DType t, const void* src, float* out, int64_t n) {
  dequant_fn(t)(static_cast<const char*>(src), out, n);
}

}  // namespace tessera::kernels::avx512
