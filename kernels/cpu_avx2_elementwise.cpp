// AVX2 elementwise ops (8 lanes; tails through maskload/maskstore).
#include <immintrin.h>

#include "kernels/avx2_math.h"
#include "kernels/isa_kernels.h"

namespace tessera::kernels::avx2 {

template <typename F>
static inline void map_inplace(float* x, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, f(_mm256_loadu_ps(x + i), i, _mm256_set1_epi32(-1)));
  if (i < n) {
    const __m256i m = lane_mask(n - i);
    _mm256_maskstore_ps(x + i, m, f(_mm256_maskload_ps(x + i, m), i, m));
  }
}

void silu(float* x, int64_t n) {
  map_inplace(x, n, [](__m256 v, int64_t, __m256i) { return silu256(v); });
}
void gelu(float* x, int64_t n) {
  map_inplace(x, n, [](__m256 v, int64_t, __m256i) { return gelu256(v); });
}
void silu_mul(float* g, const float* up, int64_t n) {
  map_inplace(g, n, [up](__m256 v, int64_t i, __m256i m) {
    return _mm256_mul_ps(silu256(v), _mm256_maskload_ps(up + i, m));
  });
}
void gelu_mul(float* g, const float* up, int64_t n) {
  map_inplace(g, n, [up](__m256 v, int64_t i, __m256i m) {
    return _mm256_mul_ps(gelu256(v), _mm256_maskload_ps(up + i, m));
  });
}
void add_inplace(float* y, const float* x, int64_t n) {
  map_inplace(y, n, [x](__m256 v, int64_t i, __m256i m) {
    return _mm256_add_ps(v, _mm256_maskload_ps(x + i, m));
  });
}

void softmax(float* x, int64_t n_rows, int64_t n) {
  for (int64_t r = 0; r < n_rows; ++r, x += n) {
    float mx = -__builtin_inff();
    int64_t i = 0;
    __m256 vmax = _mm256_set1_ps(mx);
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    mx = hmax(vmax);
    for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 vsum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
      const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
      _mm256_storeu_ps(x + i, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    if (i < n) {
      const __m256i m = lane_mask(n - i);
      const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm)),
                                     _mm256_castsi256_ps(m));
      _mm256_maskstore_ps(x + i, m, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / hsum(vsum));
    map_inplace(x, n, [inv](__m256 v, int64_t, __m256i) { return _mm256_mul_ps(v, inv); });
  }
}

void rmsnorm(const float* x, const float* w, float* out, int64_t n_rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < n_rows; ++r, x += dim, out += dim) {
    // As ggml's rms_norm: squares in f32, summed in double; mean and scale in f32.
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) {
      const __m256 a = _mm256_loadu_ps(x + i);
      const __m256 sq = _mm256_mul_ps(a, a);
      s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
      s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    const __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double ss = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < dim; ++i) ss += static_cast<double>(x[i] * x[i]);
    const float mean = static_cast<float>(ss / static_cast<double>(dim));
    const float inv = 1.0f / __builtin_sqrtf(mean + eps);
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= dim; i += 8) {
      _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv),
                                              _mm256_loadu_ps(w + i)));
    }
    for (; i < dim; ++i) out[i] = x[i] * inv * w[i];
  }
}


}  // namespace tessera::kernels::avx2
