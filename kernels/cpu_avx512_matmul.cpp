// AVX-512 (F/BW/VL + VNNI) matmul: decode GEMV per weight dtype and the packed GEMM.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c; only called
// when active_isa() >= kAvx512.
#include <immintrin.h>

#include <cstring>

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
  for (int t = 0; t < NT; ++t)
    for (int i = 0; i < R; ++i) out[t * R + i] = _mm512_reduce_add_ps(acc[t][i]);
}

template <DType T, int NT>
void gemv_float_tokens(const WeightMatrix& w, const float* x, int64_t xs, float* y, int64_t ys,
                       int64_t r0, int64_t r1) {
  constexpr int R = 4;
  const int64_t rs = row_stride(w);
  const char* base = static_cast<const char*>(w.data);
  float out[NT * R];
  int64_t r = r0;
  for (; r + R <= r1; r += R) {
    gemv_tile<T, NT, R>(base + r * rs, rs, x, xs, w.cols, out);
    for (int t = 0; t < NT; ++t)
      for (int i = 0; i < R; ++i) y[t * ys + r + i] = out[t * R + i];
  }
  for (; r < r1; ++r) {
    gemv_tile<T, NT, 1>(base + r * rs, rs, x, xs, w.cols, out);
    for (int t = 0; t < NT; ++t) y[t * ys + r] = out[t];
  }
}

template <DType T>
void gemv_float_t(const WeightMatrix& w, const float* x, int64_t n, int64_t xs, float* y,
                  int64_t ys, int64_t r0, int64_t r1) {
  for (int64_t t = 0; t < n;) {
    const int64_t left = n - t;
    if (left >= 4) {
      gemv_float_tokens<T, 4>(w, x + t * xs, xs, y + t * ys, ys, r0, r1);
      t += 4;
    } else if (left == 3) {
      gemv_float_tokens<T, 3>(w, x + t * xs, xs, y + t * ys, ys, r0, r1);
      t += 3;
    } else if (left == 2) {
      gemv_float_tokens<T, 2>(w, x + t * xs, xs, y + t * ys, ys, r0, r1);
      t += 2;
    } else {
      gemv_float_tokens<T, 1>(w, x + t * xs, xs, y + t * ys, ys, r0, r1);
      t += 1;
    }
  }
}

// ---- block-quantised weights, int8 activations, VNNI ----

template <DType T>
struct QBlock;
template <> struct QBlock<DType::kQ8_0> { using type = BlockQ8_0; };
template <> struct QBlock<DType::kQ4_0> { using type = BlockQ4_0; };
template <> struct QBlock<DType::kQ4_1> { using type = BlockQ4_1; };

// The 32 weights of a block as unsigned bytes in element order (see QActBlock::corr).
template <DType T>
inline __m256i unpack_u8(const typename QBlock<T>::type* b) {
  if constexpr (T == DType::kQ8_0) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs));
    return _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80)));
  } else {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
  }
}

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <DType T, int R>
void gemv_q_tile(const char* w0, int64_t rs, const QActBlock* xb, const float* xd, int64_t nb,
                 float* out) {
  using B = typename QBlock<T>::type;
  __m256 acc[R];
  for (int i = 0; i < R; ++i) acc[i] = _mm256_setzero_ps();
  const B* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = reinterpret_cast<const B*>(w0 + i * rs);
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(xb[b].q));
    const __m256i corr = _mm256_load_si256(reinterpret_cast<const __m256i*>(xb[b].corr));
    const __m256 dx = _mm256_set1_ps(xd[b]);
    for (int i = 0; i < R; ++i) {
      const B* blk = rows[i] + b;
      const __m256i wq = unpack_u8<T>(blk);
      __m256i dot;
      if constexpr (T == DType::kQ4_1) {
        dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wq, xq);
      } else {
        dot = _mm256_dpbusd_epi32(corr, wq, xq);
      }
      const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(dot), dx);
      acc[i] = _mm256_fmadd_ps(f, _mm256_set1_ps(_cvtsh_ss(blk->d)), acc[i]);
      if constexpr (T == DType::kQ4_1) {
        acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(blk->m)), _mm256_castsi256_ps(corr),
                                 acc[i]);
      }
    }
  }
  for (int i = 0; i < R; ++i) out[i] = hsum256(acc[i]);
}

template <DType T>
void gemv_quant_t(const WeightMatrix& w, const QActBlock* xb, const float* xd, float* y,
                  int64_t r0, int64_t r1) {
  constexpr int R = 4;
  const int64_t rs = row_stride(w);
  const int64_t nb = w.cols / kQuantBlock;
  const char* base = static_cast<const char*>(w.data);
  int64_t r = r0;
  for (; r + R <= r1; r += R) gemv_q_tile<T, R>(base + r * rs, rs, xb, xd, nb, y + r);
  for (; r < r1; ++r) gemv_q_tile<T, 1>(base + r * rs, rs, xb, xd, nb, y + r);
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

void quantize_acts(DType wt, const float* x, int64_t cols, QActBlock* blocks, float* d) {
  for (int64_t b = 0; b < cols / kQuantBlock; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
    const __m512 amax = _mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1));
    const float m = _mm512_reduce_max_ps(amax);
    const float db = m / 127.0f;
    const float id = db != 0.0f ? 1.0f / db : 0.0f;
    d[b] = db;
    const __m512 vid = _mm512_set1_ps(id);
    const __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x0, vid)));
    const __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x1, vid)));
    const __m256i q = _mm256_set_m128i(q1, q0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(blocks[b].q), q);
    const __m256i sum4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q);
    __m256i corr;
    if (wt == DType::kQ8_0) {
      corr = _mm256_mullo_epi32(sum4, _mm256_set1_epi32(-128));
    } else if (wt == DType::kQ4_0) {
      corr = _mm256_mullo_epi32(sum4, _mm256_set1_epi32(-8));
    } else {
      corr = _mm256_castps_si256(_mm256_mul_ps(_mm256_cvtepi32_ps(sum4), _mm256_set1_ps(db)));
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(blocks[b].corr), corr);
  }
}

void gemv_quant(const WeightMatrix& w, const QActBlock* xb, const float* xd, float* y, int64_t r0,
                int64_t r1) {
  switch (w.dtype) {
    case DType::kQ8_0: return gemv_quant_t<DType::kQ8_0>(w, xb, xd, y, r0, r1);
    case DType::kQ4_0: return gemv_quant_t<DType::kQ4_0>(w, xb, xd, y, r0, r1);
    case DType::kQ4_1: return gemv_quant_t<DType::kQ4_1>(w, xb, xd, y, r0, r1);
    default: __builtin_trap();
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
