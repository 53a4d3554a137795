// Benchmarks of the CPU ops with machine-limit references (docs/KERNELS.md):
//   membw       streaming read of a 1 GiB buffer with 2 threads (the GEMV ceiling)
//   fma_peak    register-only AVX-512 FMA loop, 1 and 2 threads (the GEMM ceiling)
//   gemv/*      matmul n = 1, weights rotated over >= 1 GiB of copies so that nothing is
//               served from the 480 MiB L3; bytes/s counts weight bytes
//   small_m/*   matmul n = 1, 2, 5, 9, 16 (speculative verify), weights rotated as gemv/*
//   gemm/*      matmul n = 64 / 128, FLOP/s = 2 n rows cols
//   attention   decode (n_q = 1) over a long context; bytes/s counts K + V bytes
// Common flags: --benchmark_min_time=0.5 --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <immintrin.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/ops.h"
#include "kernels/q8_packed.h"

namespace tessera::bench {
double fma_peak_avx512(int64_t iters, float* sink);
double dpbf16_peak_avx512(int64_t iters, float* sink);
}

namespace tessera::kernels {
namespace {

// Threads of the pools below: 2, or TESSERA_BENCH_THREADS (e.g. 1 to measure one core
// while something else occupies the other).
const int kThreads = [] {
  const char* e = std::getenv("TESSERA_BENCH_THREADS");
  return e && std::atoi(e) > 0 ? std::atoi(e) : 2;
}();
constexpr int64_t kGiB = int64_t{1} << 30;

// TESSERA_BENCH_ISA=avx2 (or scalar, avx512) runs the ops at a lower ISA level.
const bool kIsaSet = [] {
  const char* e = std::getenv("TESSERA_BENCH_ISA");
  if (!e) return false;
  const std::string v = e;
  if (v == "scalar") set_isa_override(Isa::kScalar);
  if (v == "avx2") set_isa_override(Isa::kAvx2);
  if (v == "avx512") set_isa_override(Isa::kAvx512);
  return true;
}();

std::vector<float> rand_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Copies of one quantised W, together at least `total` bytes; `packed`: Q8_0 repacked
// as WeightLayout::kQ8Rows16 (the int8 draft's layout, kernels/q8_packed.h).
struct WeightSet {
  std::vector<std::vector<uint8_t>> copies;
  DType t;
  int64_t rows, cols;
  bool packed;
  WeightSet(DType t_, int64_t rows_, int64_t cols_, int64_t total, bool packed_ = false)
      : t(t_), rows(rows_), cols(cols_), packed(packed_) {
    const int64_t rb = dtype_row_bytes(t, cols);
    std::vector<uint8_t> w(rows * rb);
    const auto row = rand_floats(cols, 1);
    for (int64_t r = 0; r < rows; ++r) quantize_row(t, row.data(), w.data() + r * rb, cols);
    if (packed) {
      std::vector<uint8_t> p(static_cast<size_t>(q8_rows16_bytes(rows, cols)));
      pack_q8_rows16(w.data(), 0, rows, cols, p.data());
      w = std::move(p);
    }
    const int64_t bytes = static_cast<int64_t>(w.size());
    const int64_t n = std::max<int64_t>(1, (total + bytes - 1) / bytes);
    copies.assign(n, w);
  }
  WeightMatrix matrix(size_t i) const {
    if (packed) return q8_rows16_view(copies[i].data(), rows, cols);
    return WeightMatrix{t, rows, cols, copies[i].data(), 0};
  }
};

void BM_membw(benchmark::State& state) {
  const int64_t n = kGiB / sizeof(uint64_t);
  std::vector<uint64_t> buf(n, 1);
  ThreadPool pool(kThreads);
  std::atomic<uint64_t> sink{0};
  for (auto _ : state) {
    pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t i = b; i + 4 <= e; i += 4) {
        s0 += buf[i], s1 += buf[i + 1], s2 += buf[i + 2], s3 += buf[i + 3];
      }
      sink += s0 + s1 + s2 + s3;
    });
  }
  state.SetBytesProcessed(state.iterations() * kGiB);
  benchmark::DoNotOptimize(sink.load());
}
BENCHMARK(BM_membw)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same read with 512-bit loads (4 independent sums): the scalar loop above issues
// too few loads per cycle to saturate memory, so GEMVs can beat it. This one is the
// read bandwidth the GEMV numbers are stated against.
__attribute__((target("avx512f"))) uint64_t sum_avx512(const uint64_t* p, int64_t n) {
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(p + i));
    s1 = _mm512_add_epi64(s1, _mm512_loadu_si512(p + i + 8));
    s2 = _mm512_add_epi64(s2, _mm512_loadu_si512(p + i + 16));
    s3 = _mm512_add_epi64(s3, _mm512_loadu_si512(p + i + 24));
  }
  return static_cast<uint64_t>(
      _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3))));
}

void BM_membw_avx512(benchmark::State& state) {
  if (detected_isa() < Isa::kAvx512) return state.SkipWithError("no AVX-512");
  const int64_t n = kGiB / sizeof(uint64_t);
  std::vector<uint64_t> buf(n, 1);
  ThreadPool pool(kThreads);
  std::atomic<uint64_t> sink{0};
  for (auto _ : state) {
    pool.parallel_for(n / 32, [&](int64_t b, int64_t e, int) { sink += sum_avx512(buf.data() + 32 * b, 32 * (e - b)); });
  }
  state.SetBytesProcessed(state.iterations() * kGiB);
  benchmark::DoNotOptimize(sink.load());
}
BENCHMARK(BM_membw_avx512)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_fma_peak(benchmark::State& state) {
  if (detected_isa() < Isa::kAvx512) return state.SkipWithError("no AVX-512");
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads);
  const int64_t iters = 1 << 22;
  double flops = 0;
  float sink[8];
  for (auto _ : state) {
    pool.parallel_for(threads, [&](int64_t b, int64_t, int) {
      bench::fma_peak_avx512(iters, &sink[b]);
    });
    flops += static_cast<double>(iters) * 24 * 16 * 2 * threads;
  }
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_fma_peak)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_dpbf16_peak(benchmark::State& state) {
  if (detected_isa() < Isa::kAvx512Bf16) return state.SkipWithError("no AVX512_BF16");
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads);
  const int64_t iters = 1 << 22;
  double flops = 0;
  float sink[8];
  for (auto _ : state) {
    pool.parallel_for(threads, [&](int64_t b, int64_t, int) { bench::dpbf16_peak_avx512(iters, &sink[b]); });
    flops += static_cast<double>(iters) * 24 * 32 * 2 * threads;
  }
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_dpbf16_peak)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void gemv(benchmark::State& state, DType t, int64_t rows, int64_t cols, bool packed = false) {
  WeightSet ws(t, rows, cols, kGiB, packed);
  ThreadPool pool(kThreads);
  const auto x = rand_floats(cols, 2);
  std::vector<float> y(rows);
  size_t i = 0;
  for (auto _ : state) {
    matmul(pool, ws.matrix(i), x.data(), 1, y.data());
    i = (i + 1) % ws.copies.size();
  }
  benchmark::DoNotOptimize(y.data());
  state.SetBytesProcessed(state.iterations() * dtype_row_bytes(t, cols) * rows);
}

void gemm(benchmark::State& state, DType t, int64_t rows, int64_t cols,
          ActRounding act = ActRounding::kNone) {
  const int64_t n = state.range(0);
  WeightSet ws(t, rows, cols, 0);
  ThreadPool pool(kThreads);
  const auto x = rand_floats(n * cols, 3);
  std::vector<float> y(n * rows);
  const WeightMatrix w{t, rows, cols, ws.copies[0].data(), 0, act};
  for (auto _ : state) matmul(pool, w, x.data(), n, y.data());
  state.counters["FLOP/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2.0 * n * rows * cols, benchmark::Counter::kIsRate);
}

#define GEMV_BENCH(name, dtype, rows, cols)                                                    \
  void BM_gemv_##name(benchmark::State& s) { gemv(s, dtype, rows, cols); }                    \
  BENCHMARK(BM_gemv_##name)->Unit(benchmark::kMicrosecond)->UseRealTime();

GEMV_BENCH(F32_4096x4096, DType::kF32, 4096, 4096)
GEMV_BENCH(F16_4096x4096, DType::kF16, 4096, 4096)
GEMV_BENCH(BF16_4096x4096, DType::kBF16, 4096, 4096)
GEMV_BENCH(Q8_0_11008x4096, DType::kQ8_0, 11008, 4096)
GEMV_BENCH(Q4_0_11008x4096, DType::kQ4_0, 11008, 4096)
GEMV_BENCH(Q4_1_11008x4096, DType::kQ4_1, 11008, 4096)
GEMV_BENCH(Q8_0_4096x11008, DType::kQ8_0, 4096, 11008)
GEMV_BENCH(Q4_0_4096x11008, DType::kQ4_0, 4096, 11008)
// Q8_0 repacked for VNNI (bytes/s counts the row-major Q8_0 bytes, as above).
void BM_gemv_Q8_0_rows16_11008x4096(benchmark::State& s) { gemv(s, DType::kQ8_0, 11008, 4096, true); }
void BM_gemv_Q8_0_rows16_4096x11008(benchmark::State& s) { gemv(s, DType::kQ8_0, 4096, 11008, true); }
BENCHMARK(BM_gemv_Q8_0_rows16_11008x4096)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_gemv_Q8_0_rows16_4096x11008)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Small-M matmul (speculative verify steps, small decode batches; docs/SPECULATIVE.md):
// M = range(0) activation rows against one weight matrix, weights rotated over >= 1 GiB
// of copies as in gemv/*. bytes/s counts weight bytes once per call, so a kernel that
// streams W once for all M rows keeps the M = 1 rate while it stays memory-bound.
void small_m(benchmark::State& state, DType t, int64_t rows, int64_t cols, bool packed = false) {
  const int64_t m = state.range(0);
  // One set per (dtype, shape), shared by the M cases: building 1 GiB costs seconds.
  static std::unique_ptr<WeightSet> cached;
  static std::tuple<DType, int64_t, int64_t, bool> key{};
  if (!cached || key != std::make_tuple(t, rows, cols, packed)) {
    cached.reset();
    cached = std::make_unique<WeightSet>(t, rows, cols, kGiB, packed);
    key = {t, rows, cols, packed};
  }
  const WeightSet& ws = *cached;
  ThreadPool pool(kThreads);
  const auto x = rand_floats(m * cols, 2);
  std::vector<float> y(m * rows);
  size_t i = 0;
  for (auto _ : state) {
    matmul(pool, ws.matrix(i), x.data(), m, y.data());
    i = (i + 1) % ws.copies.size();
  }
  benchmark::DoNotOptimize(y.data());
  state.SetBytesProcessed(state.iterations() * dtype_row_bytes(t, cols) * rows);
}

#define SMALL_M_BENCH(name, dtype, rows, cols)                                                 \
  void BM_small_m_##name(benchmark::State& s) { small_m(s, dtype, rows, cols); }               \
  BENCHMARK(BM_small_m_##name)->Arg(1)->Arg(2)->Arg(5)->Arg(9)->Arg(16)->Unit(benchmark::kMicrosecond)->UseRealTime();

// SmolLM2-135M's MLP shape (1536 x 576 up/gate, 576 x 1536 down) and a 2048 x 2048 one.
SMALL_M_BENCH(F32_576x1536, DType::kF32, 576, 1536)
SMALL_M_BENCH(F16_576x1536, DType::kF16, 576, 1536)
SMALL_M_BENCH(BF16_576x1536, DType::kBF16, 576, 1536)
SMALL_M_BENCH(Q8_0_576x1536, DType::kQ8_0, 576, 1536)
SMALL_M_BENCH(Q4_0_576x1536, DType::kQ4_0, 576, 1536)
SMALL_M_BENCH(F32_2048x2048, DType::kF32, 2048, 2048)
SMALL_M_BENCH(F16_2048x2048, DType::kF16, 2048, 2048)
SMALL_M_BENCH(BF16_2048x2048, DType::kBF16, 2048, 2048)
SMALL_M_BENCH(Q8_0_2048x2048, DType::kQ8_0, 2048, 2048)
SMALL_M_BENCH(Q4_0_2048x2048, DType::kQ4_0, 2048, 2048)
void BM_small_m_Q8_0_rows16_576x1536(benchmark::State& s) { small_m(s, DType::kQ8_0, 576, 1536, true); }
void BM_small_m_Q8_0_rows16_2048x2048(benchmark::State& s) { small_m(s, DType::kQ8_0, 2048, 2048, true); }
BENCHMARK(BM_small_m_Q8_0_rows16_576x1536)->Arg(1)->Arg(2)->Arg(5)->Arg(9)->Arg(16)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_small_m_Q8_0_rows16_2048x2048)->Arg(1)->Arg(2)->Arg(5)->Arg(9)->Arg(16)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The same GEMV on one L2-resident matrix (512 x 4096): the kernel's compute rate, to
// tell compute-bound from memory-bound (compare with the gemv/* rows above and membw).
void gemv_hot(benchmark::State& state, DType t, bool packed = false) {
  const int64_t rows = 512, cols = 4096;
  WeightSet ws(t, rows, cols, 0, packed);
  ThreadPool pool(kThreads);
  const auto x = rand_floats(cols, 2);
  std::vector<float> y(rows);
  const WeightMatrix w = ws.matrix(0);
  for (auto _ : state) matmul(pool, w, x.data(), 1, y.data());
  state.SetBytesProcessed(state.iterations() * dtype_row_bytes(t, cols) * rows);
}
// Small-M on an L2-resident matrix (256 x 576 F32, SmolLM2's row length): the FMA rate
// of the verify kernels without the memory stream (FLOP/s against fma_peak).
void BM_small_m_hot_F32_256x576(benchmark::State& state) {
  const int64_t m = state.range(0), rows = 256, cols = 576;
  WeightSet ws(DType::kF32, rows, cols, 0);
  ThreadPool pool(kThreads);
  const auto x = rand_floats(m * cols, 2);
  std::vector<float> y(m * rows);
  const WeightMatrix w = ws.matrix(0);
  for (auto _ : state) matmul(pool, w, x.data(), m, y.data());
  state.counters["FLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * m * rows * cols,
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_small_m_hot_F32_256x576)->Arg(1)->Arg(4)->Arg(5)->Arg(9)->Arg(11)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_gemv_hot_F32(benchmark::State& s) { gemv_hot(s, DType::kF32); }
void BM_gemv_hot_Q8_0(benchmark::State& s) { gemv_hot(s, DType::kQ8_0); }
void BM_gemv_hot_Q4_0(benchmark::State& s) { gemv_hot(s, DType::kQ4_0); }
void BM_gemv_hot_Q8_0_rows16(benchmark::State& s) { gemv_hot(s, DType::kQ8_0, true); }
BENCHMARK(BM_gemv_hot_Q8_0_rows16)->Unit(benchmark::kMicrosecond)->UseRealTime();
void BM_gemv_hot_Q4_1(benchmark::State& s) { gemv_hot(s, DType::kQ4_1); }
BENCHMARK(BM_gemv_hot_F32)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_gemv_hot_Q8_0)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_gemv_hot_Q4_0)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_gemv_hot_Q4_1)->Unit(benchmark::kMicrosecond)->UseRealTime();

#define GEMM_BENCH(name, dtype, rows, cols)                                                    \
  void BM_gemm_##name(benchmark::State& s) { gemm(s, dtype, rows, cols); }                    \
  BENCHMARK(BM_gemm_##name)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

GEMM_BENCH(F32_4096x4096, DType::kF32, 4096, 4096)
GEMM_BENCH(Q8_0_4096x4096, DType::kQ8_0, 4096, 4096)
GEMM_BENCH(Q4_0_4096x4096, DType::kQ4_0, 4096, 4096)
GEMM_BENCH(Q4_1_4096x4096, DType::kQ4_1, 4096, 4096)
GEMM_BENCH(F16_4096x4096, DType::kF16, 4096, 4096)
GEMM_BENCH(BF16_4096x4096, DType::kBF16, 4096, 4096)
// BF16 with llama.cpp's bf16 activations: vdpbf16ps on kAvx512Bf16.
void BM_gemm_BF16_act_bf16_4096x4096(benchmark::State& s) {
  gemm(s, DType::kBF16, 4096, 4096, ActRounding::kWeightType);
}
BENCHMARK(BM_gemm_BF16_act_bf16_4096x4096)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

// A tiny decode matmul (stories260K: dim 64, hidden 172 -> 64x192 etc.): dispatch-bound.
void BM_matmul_tiny(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = 64;
  const auto wv = rand_floats(rows * cols, 7);
  const auto x = rand_floats(cols, 8);
  std::vector<float> y(rows);
  ThreadPool pool(kThreads);
  const WeightMatrix w{DType::kF32, rows, cols, wv.data(), 0};
  for (auto _ : state) matmul(pool, w, x.data(), 1, y.data());
}
BENCHMARK(BM_matmul_tiny)->Arg(64)->Arg(512)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Decode attention: 32 query heads, KV heads = range(1) (8: GQA, 1: MQA), head_dim 128,
// n_kv = range(0).
void BM_attention_decode(benchmark::State& state) {
  const int64_t n_kv = state.range(0), heads = 32, kv_heads = state.range(1), hd = 128, block = 256;
  const int64_t blocks = (n_kv + block - 1) / block;
  const auto k = rand_floats(blocks * block * kv_heads * hd, 4);
  const auto v = rand_floats(blocks * block * kv_heads * hd, 5);
  const auto q = rand_floats(heads * hd, 6);
  std::vector<const float*> kb, vb;
  for (int64_t b = 0; b < blocks; ++b) {
    kb.push_back(k.data() + b * block * kv_heads * hd);
    vb.push_back(v.data() + b * block * kv_heads * hd);
  }
  std::vector<float> out(heads * hd), lse(heads);
  AttentionArgs a;
  a.q = q.data(), a.n_q = 1, a.n_heads = heads, a.n_kv_heads = kv_heads, a.head_dim = hd;
  a.k_blocks = kb.data(), a.v_blocks = vb.data(), a.block_size = block, a.n_kv = n_kv;
  a.q_pos0 = n_kv - 1, a.scale = 1.0f / std::sqrt(128.0f), a.out = out.data(), a.lse = lse.data();
  ThreadPool pool(kThreads);
  for (auto _ : state) attention(pool, a);
  state.SetBytesProcessed(state.iterations() * 2 * n_kv * kv_heads * hd * sizeof(float));
}
BENCHMARK(BM_attention_decode)
    ->Args({4096, 8})
    ->Args({32768, 8})
    ->Args({32768, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Dispatch cost of an empty parallel_for (decode runs ~10 per layer per token).
void BM_dispatch(benchmark::State& state) {
  ThreadPool pool(kThreads);
  std::atomic<int> x{0};
  for (auto _ : state) {
    pool.parallel_for(kThreads, [&](int64_t, int64_t, int) { x.fetch_add(1, std::memory_order_relaxed); });
  }
}
BENCHMARK(BM_dispatch)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace tessera::kernels
