#include "cli/machine_limits.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "kernels/cpu_features.h"

namespace tessera::cli {

namespace {

using Clock = std::chrono::steady_clock;

__attribute__((target("avx2"))) double sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

// 12 independent accumulators hide the 4-cycle FMA latency on two FMA ports.
template <int kChains>
__attribute__((target("avx512f"))) float fma_avx512(int64_t iters) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.001f * static_cast<float>(c));
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, a);
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  return _mm512_reduce_add_ps(s);
}

template <int kChains>
__attribute__((target("avx2,fma"))) float fma_avx2(int64_t iters) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(0.001f * static_cast<float>(c));
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, a);
  __m256 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  return t[0] + t[7];
}

}  // namespace

MachineLimits measure_machine_limits(kernels::ThreadPool& pool, double budget) {
  MachineLimits m;
  const int nt = pool.size();
  // Bandwidth: 1 GiB read, best of several passes.
  const int64_t n = (int64_t{1} << 30) / 4;
  std::vector<float> buf(static_cast<size_t>(n));
  auto init = [&](int64_t b, int64_t e, int) { std::fill(buf.begin() + b, buf.begin() + e, 1.0f); };
  pool.parallel_for(n, init);
  std::vector<double> sink(static_cast<size_t>(nt), 0.0);
  double best = 1e30;
  const auto deadline = Clock::now() + std::chrono::duration<double>(budget * 0.6);
  for (int rep = 0; rep < 8 && (rep < 3 || Clock::now() < deadline); ++rep) {
    const auto t0 = Clock::now();
    auto read = [&](int64_t b, int64_t e, int t) { sink[t] += sum_avx2(buf.data() + b, e - b); };
    pool.parallel_for(n, read);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  m.read_gbps = static_cast<double>(n) * 4 / best / 1e9;

  // FMA peak: each thread runs the same number of iterations.
  const bool avx512 = kernels::cpu_features().avx512f;
  constexpr int kChains = 12;
  const int64_t iters = 2'000'000;
  double fma_best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    auto run = [&](int64_t b, int64_t e, int t) {
      for (int64_t i = b; i < e; ++i) sink[t] += avx512 ? fma_avx512<kChains>(iters) : fma_avx2<kChains>(iters);
    };
    pool.parallel_for(nt, run);
    fma_best = std::min(fma_best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double lanes = avx512 ? 16 : 8;
  m.fma_gflops = 2.0 * lanes * kChains * static_cast<double>(iters) * nt / fma_best / 1e9;
  m.fma_isa = avx512 ? "AVX-512" : "AVX2";
  volatile double keep = 0;
  for (double s : sink) keep = keep + s;
  return m;
}

}  // namespace tessera::cli
