// AVX-512 blocked online-softmax attention (flash style) for one task: a tile of
// queries [t0, t1) times the query heads that share KV head kvh (GQA: K and V are read
// once for the whole group). KV is walked in chunks of <= kAttnChunk tokens that never
// cross a cache block; per chunk: scores (q.k * scale, softcap, mask) -> running max
// and sum -> acc = acc * e^(m_old - m_new) + sum_j p_j v_j. All in f32.
#include <immintrin.h>

#include "kernels/avx512_math.h"
#include "kernels/isa_kernels.h"

namespace tessera::kernels::avx512 {
namespace {

constexpr float kNegInf = -__builtin_inff();

// Visible KV index range [lo, hi) of the query at absolute position qp.
inline void visible_range(const AttentionArgs& a, int64_t qp, int64_t* lo, int64_t* hi) {
  int64_t l = 0, h = a.n_kv;
  if (a.causal && qp - a.kv_pos0 + 1 < h) h = qp - a.kv_pos0 + 1;
  if (a.window > 0 && qp - a.window + 1 - a.kv_pos0 > l) l = qp - a.window + 1 - a.kv_pos0;
  if (h < l) h = l;
  *lo = l;
  *hi = h;
}

// head_dim = 16 * (NV - 1) + (bits in lm): NV vectors, the last one masked.
template <int NV>
void task(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t kvh, float* scratch) {
  const int64_t hd = a.head_dim;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t rows = (t1 - t0) * group;
  const int64_t qs = a.q_stride ? a.q_stride : a.n_heads * hd;
  const int64_t os = a.out_stride ? a.out_stride : a.n_heads * hd;
  const int64_t kv_tok = a.n_kv_heads * hd;
  const __mmask16 lm = tail_mask(hd - 16 * (NV - 1));
  auto vmask = [lm](int v) { return v == NV - 1 ? lm : static_cast<__mmask16>(0xffff); };

  float* P = scratch;                    // [rows][kAttnChunk]
  float* acc = P + rows * kAttnChunk;    // [rows][hd]
  float* m = acc + rows * hd;            // [rows]
  float* l = m + rows;                   // [rows]
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
  const __m512 vscale = _mm512_set1_ps(a.scale);
  const float cap = a.softcap;

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
      const int64_t clo = (lo > j0 ? lo : j0) - j0;           // visible chunk-relative range
      const int64_t chi = (hi < j0 + c ? hi : j0 + c) - j0;
      for (int64_t gi = 0; gi < group; ++gi) {
        const int64_t r = (t - t0) * group + gi;
        if (clo >= chi) continue;  // nothing visible in this chunk
        const float* q = a.q + t * qs + (kvh * group + gi) * hd;
        __m512 qv[NV];
        for (int v = 0; v < NV; ++v) qv[v] = _mm512_maskz_loadu_ps(vmask(v), q + 16 * v);
        float* pr = P + r * kAttnChunk;
        for (int64_t cc = 0; cc < c; ++cc) pr[cc] = kNegInf;
        for (int64_t cc = clo; cc < chi; ++cc) {
          const float* k = kbase + cc * kv_tok;
          __m512 s = _mm512_mul_ps(qv[0], _mm512_maskz_loadu_ps(vmask(0), k));
          for (int v = 1; v < NV; ++v)
            s = _mm512_fmadd_ps(qv[v], _mm512_maskz_loadu_ps(vmask(v), k + 16 * v), s);
          pr[cc] = _mm512_reduce_add_ps(s);
        }
        // scale, softcap and running max over the visible scores
        __m512 vmax = _mm512_set1_ps(kNegInf);
        for (int64_t cc = clo; cc < chi; cc += 16) {
          const __mmask16 mk = tail_mask(chi - cc);
          __m512 s = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, pr + cc), vscale);
          if (cap > 0) {
            const __m512 vc = _mm512_set1_ps(cap);
            s = _mm512_mul_ps(vc, tanh512(_mm512_div_ps(s, vc)));
          }
          _mm512_mask_storeu_ps(pr + cc, mk, s);
          vmax = _mm512_mask_max_ps(vmax, mk, vmax, s);
        }
        const float mnew = m[r] > _mm512_reduce_max_ps(vmax) ? m[r] : _mm512_reduce_max_ps(vmax);
        const float alpha = m[r] == kNegInf ? 0.0f : __builtin_expf(m[r] - mnew);
        const __m512 vm = _mm512_set1_ps(mnew);
        __m512 vsum = _mm512_setzero_ps();
        for (int64_t cc = 0; cc < c; cc += 16) {
          const __mmask16 mk = tail_mask(c - cc);
          const __m512 p = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, pr + cc), vm));
          _mm512_mask_storeu_ps(pr + cc, mk, p);  // masked scores were -inf: p = 0
          vsum = _mm512_mask_add_ps(vsum, mk, vsum, p);
        }
        l[r] = l[r] * alpha + _mm512_reduce_add_ps(vsum);
        m[r] = mnew;
        float* ar = acc + r * hd;
        __m512 av[NV];
        const __m512 va = _mm512_set1_ps(alpha);
        for (int v = 0; v < NV; ++v)
          av[v] = _mm512_mul_ps(_mm512_maskz_loadu_ps(vmask(v), ar + 16 * v), va);
        for (int64_t cc = clo; cc < chi; ++cc) {
          const __m512 p = _mm512_set1_ps(pr[cc]);
          const float* vv = vbase + cc * kv_tok;
          for (int v = 0; v < NV; ++v)
            av[v] = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(vmask(v), vv + 16 * v), av[v]);
        }
        for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(ar + 16 * v, vmask(v), av[v]);
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
      const __m512 inv = _mm512_set1_ps(1.0f / l[r]);
      for (int v = 0; v < NV; ++v) {
        _mm512_mask_storeu_ps(out + 16 * v, vmask(v),
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(vmask(v), ar + 16 * v), inv));
      }
      if (a.lse) a.lse[t * a.n_heads + h] = m[r] + __builtin_logf(l[r]);
    }
  }
}

using TaskFn = void (*)(const AttentionArgs&, int64_t, int64_t, int64_t, float*);

template <int... N>
TaskFn pick(int nv, std::integer_sequence<int, N...>) {
  TaskFn f = nullptr;
  ((f = (nv == N + 1) ? task<N + 1> : f), ...);
  return f;
}

}  // namespace

void attention_task(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t kvh, float* scratch) {
  const int nv = static_cast<int>((a.head_dim + 15) / 16);
  pick(nv, std::make_integer_sequence<int, kAttnMaxHeadDim / 16>{})(a, t0, t1, kvh, scratch);
}

}  // namespace tessera::kernels::avx512
