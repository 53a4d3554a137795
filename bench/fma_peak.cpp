// Peak FMA throughput of one core: 24 independent zmm FMA chains (hides the 4-cycle
// latency on 2 FMA ports). Returns the number of flops done.
#include <immintrin.h>

#include <cstdint>

namespace tessera::bench {

double fma_peak_avx512(int64_t iters, float* sink) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_reduce_add_ps(s);
  return static_cast<double>(iters) * 24 * 16 * 2;
}

// The same with vdpbf16ps (2 bf16 MACs per f32 lane): the BF16 GEMM's ceiling.
__attribute__((target("avx512bf16"))) double dpbf16_peak_avx512(int64_t iters, float* sink) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.25f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-7f), _mm512_set1_ps(1e-7f));
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_reduce_add_ps(s);
  return static_cast<double>(iters) * 24 * 32 * 2;
}

}  // namespace tessera::bench
