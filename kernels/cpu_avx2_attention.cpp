// AVX2 blocked online-softmax attention task: the algorithm of cpu_avx512_attention.cpp
// (a tile of queries [t0, t1) x the query heads of KV head kvh; KV in chunks of <=
// kAttnChunk tokens inside one cache block; running max / sum, acc rescaled per chunk)
// on 8-lane vectors. head_dim is walked in 8-float pieces with a masked tail; for P.V
// each piece of the accumulator stays in a register across the chunk's tokens.
#include <immintrin.h>

#include "kernels/avx2_math.h"
#include "kernels/isa_kernels.h"

namespace tessera::kernels::avx2 {
namespace {

constexpr float kNegInf = -__builtin_inff();

inline void visible_range(const AttentionArgs& a, int64_t qp, int64_t* lo, int64_t* hi) {
  int64_t l = 0, h = a.n_kv;
  if (a.causal && qp - a.kv_pos0 + 1 < h) h = qp - a.kv_pos0 + 1;
  if (a.window > 0 && qp - a.window + 1 - a.kv_pos0 > l) l = qp - a.window + 1 - a.kv_pos0;
  if (h < l) h = l;
  *lo = l;
  *hi = h;
}

inline float dot(const float* q, const float* k, int64_t hd, __m256i tail) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= hd; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(k + i + 8), s1);
  }
  for (; i + 8 <= hd; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), s0);
  if (i < hd) s1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, tail), _mm256_maskload_ps(k + i, tail), s1);
  return hsum(_mm256_add_ps(s0, s1));
}

}  // namespace

void attention_task(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t kvh, float* scratch) {
  const int64_t hd = a.head_dim;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t rows = (t1 - t0) * group;
  const int64_t qs = a.q_stride ? a.q_stride : a.n_heads * hd;
  const int64_t os = a.out_stride ? a.out_stride : a.n_heads * hd;
  const int64_t kv_tok = a.n_kv_heads * hd;
  const __m256i tail = lane_mask(hd % 8);

  float* P = scratch;                  // [rows][kAttnChunk]
  float* acc = P + rows * kAttnChunk;  // [rows][hd]
  float* m = acc + rows * hd;          // [rows]
  float* l = m + rows;                 // [rows]
  for (int64_t r = 0; r < rows; ++r) m[r] = kNegInf, l[r] = 0.0f;
  for (int64_t i = 0; i < rows * hd; ++i) acc[i] = 0.0f;

  int64_t jlo = a.n_kv, jhi = 0;
  for (int64_t t = t0; t < t1; ++t) {
    int64_t lo, hi;
    visible_range(a, a.q_pos0 + t, &lo, &hi);
    if (lo < hi) {
      jlo = lo < jlo ? lo : jlo;
      jhi = hi > jhi ? hi : jhi;
    }
  }
  for (int64_t j0 = jlo; j0 < jhi;) {
    const int64_t b = j0 / a.block_size, within = j0 % a.block_size;
    int64_t c = a.block_size - within;
    if (c > kAttnChunk) c = kAttnChunk;
    if (c > jhi - j0) c = jhi - j0;
    const float* kbase = a.k_blocks[b] + within * kv_tok + kvh * hd;
    const float* vbase = a.v_blocks[b] + within * kv_tok + kvh * hd;
    for (int64_t t = t0; t < t1; ++t) {
      int64_t lo, hi;
      visible_range(a, a.q_pos0 + t, &lo, &hi);
      const int64_t clo = (lo > j0 ? lo : j0) - j0;
      const int64_t chi = (hi < j0 + c ? hi : j0 + c) - j0;
      if (clo >= chi) continue;
      for (int64_t gi = 0; gi < group; ++gi) {
        const int64_t r = (t - t0) * group + gi;
        const float* q = a.q + t * qs + (kvh * group + gi) * hd;
        float* pr = P + r * kAttnChunk;
        float mx = kNegInf;
        for (int64_t cc = clo; cc < chi; ++cc) {
          float s = dot(q, kbase + cc * kv_tok, hd, tail) * a.scale;
          if (a.softcap > 0) s = a.softcap * __builtin_tanhf(s / a.softcap);
          pr[cc] = s;
          mx = s > mx ? s : mx;
        }
        const float mnew = m[r] > mx ? m[r] : mx;
        const float alpha = m[r] == kNegInf ? 0.0f : __builtin_expf(m[r] - mnew);
        const __m256 vm = _mm256_set1_ps(mnew);
        __m256 vsum = _mm256_setzero_ps();
        int64_t cc = clo;
        for (; cc + 8 <= chi; cc += 8) {
          const __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(pr + cc), vm));
          _mm256_storeu_ps(pr + cc, p);
          vsum = _mm256_add_ps(vsum, p);
        }
        float sum = hsum(vsum);
        for (; cc < chi; ++cc) {
          const float p = __builtin_expf(pr[cc] - mnew);
          pr[cc] = p;
          sum += p;
        }
        l[r] = l[r] * alpha + sum;
        m[r] = mnew;
        float* ar = acc + r * hd;
        const __m256 va = _mm256_set1_ps(alpha);
        int64_t i = 0;
        for (; i + 8 <= hd; i += 8) {
          __m256 av = _mm256_mul_ps(_mm256_loadu_ps(ar + i), va);
          for (int64_t k = clo; k < chi; ++k)
            av = _mm256_fmadd_ps(_mm256_set1_ps(pr[k]), _mm256_loadu_ps(vbase + k * kv_tok + i), av);
          _mm256_storeu_ps(ar + i, av);
        }
        if (i < hd) {
          __m256 av = _mm256_mul_ps(_mm256_maskload_ps(ar + i, tail), va);
          for (int64_t k = clo; k < chi; ++k)
            av = _mm256_fmadd_ps(_mm256_set1_ps(pr[k]), _mm256_maskload_ps(vbase + k * kv_tok + i, tail), av);
          _mm256_maskstore_ps(ar + i, tail, av);
        }
      }
    }
    j0 += c;
  }
  for (int64_t t = t0; t < t1; ++t) {
    for (int64_t gi = 0; gi < group; ++gi) {
      const int64_t r = (t - t0) * group + gi;
      const int64_t h = kvh * group + gi;
      float* out = a.out + t * os + h * hd;
      const float* ar = acc + r * hd;
      if (l[r] == 0.0f) {
        for (int64_t i = 0; i < hd; ++i) out[i] = 0.0f;
        if (a.lse) a.lse[t * a.n_heads + h] = kNegInf;
        continue;
      }
      const float inv = 1.0f / l[r];
      for (int64_t i = 0; i < hd; ++i) out[i] = ar[i] * inv;
      if (a.lse) a.lse[t * a.n_heads + h] = m[r] + __builtin_logf(l[r]);
    }
  }
}

}  // namespace tessera::kernels::avx2
