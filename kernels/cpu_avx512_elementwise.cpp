// AVX-512 elementwise ops: activations, softmax, rmsnorm, add. Tails use masked
// loads/stores, so every length runs the same vector code.
#include <immintrin.h>

#include "kernels/avx512_math.h"
#include "kernels/isa_kernels.h"

namespace tessera::kernels::avx512 {

template <typename F>
static inline void map_inplace(float* x, int64_t n, F f) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, m, f(_mm512_maskz_loadu_ps(m, x + i), m, i));
  }
}

void silu(float* x, int64_t n) {
  map_inplace(x, n, [](__m512 v, __mmask16, int64_t) { return silu512(v); });
}
void gelu(float* x, int64_t n) {
  map_inplace(x, n, [](__m512 v, __mmask16, int64_t) { return gelu512(v); });
}
void silu_mul(float* g, const float* up, int64_t n) {
  map_inplace(g, n, [up](__m512 v, __mmask16 m, int64_t i) {
    return _mm512_mul_ps(silu512(v), _mm512_maskz_loadu_ps(m, up + i));
  });
}
void gelu_mul(float* g, const float* up, int64_t n) {
  map_inplace(g, n, [up](__m512 v, __mmask16 m, int64_t i) {
    return _mm512_mul_ps(gelu512(v), _mm512_maskz_loadu_ps(m, up + i));
  });
}
void add_inplace(float* y, const float* x, int64_t n) {
  map_inplace(y, n, [x](__m512 v, __mmask16 m, int64_t i) {
    return _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, x + i));
  });
}

void softmax(float* x, int64_t n_rows, int64_t n) {
  for (int64_t r = 0; r < n_rows; ++r, x += n) {
    __m512 vmax = _mm512_set1_ps(-__builtin_inff());
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, x + i));
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 vsum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mx));
      _mm512_mask_storeu_ps(x + i, m, e);
      vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
  }
}

void rmsnorm(const float* x, const float* w, float* out, int64_t n_rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < n_rows; ++r, x += dim, out += dim) {
    // As ggml's rms_norm: squares in f32, summed in double; mean and scale in f32.
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < dim; i += 16) {
      const __m512 a = _mm512_maskz_loadu_ps(tail_mask(dim - i), x + i);
      const __m512 sq = _mm512_mul_ps(a, a);
      s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
      s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
    }
    const double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    const float mean = static_cast<float>(ss / static_cast<double>(dim));
    const __m512 inv = _mm512_set1_ps(1.0f / __builtin_sqrtf(mean + eps));
    int64_t i;
    for (i = 0; i < dim; i += 16) {
      const __mmask16 m = tail_mask(dim - i);
      const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv);
      _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i)));
    }
  }
}

}  // namespace tessera::kernels::avx512
