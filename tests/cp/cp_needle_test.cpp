// The needle model (tools/make_needle_model.py; llama.cpp retrieves with it too, see
// tests/data/needle/needle.json) over a CP ring of 4: one needle token at random depths
// of a long random haystack, the query token last; the greedy answer must be the needle
// every time. The same runs check peak memory per rank against a bound computed from the
// model: the prefill streams in chunks, so activations do not grow with the prompt and
// each rank's KV pool is about total / C.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "coordinator/generator.h"
#include "tests/cp/cp_rig.h"
#include "tests/cp/cp_test_env.h"

namespace tessera::test {
namespace {

constexpr int32_t kQuery = 3 + '?';
constexpr int32_t kFirstNeedle = 3 + 'A';  // 16 needles: 'A'..'P' (byte-fallback ids)
constexpr int64_t kChunk = 4096;

std::vector<int32_t> haystack(std::mt19937& rng, int64_t n, int64_t depth, int32_t needle) {
  std::vector<int32_t> pool;
  for (int32_t t = 3; t < 320; ++t)
    if (t != kQuery && (t < kFirstNeedle || t >= kFirstNeedle + 16)) pool.push_back(t);
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (auto& t : p) t = pool[pick(rng)];
  p[0] = 1;
  p[static_cast<size_t>(depth)] = needle;
  p.back() = kQuery;
  return p;
}

void expect_needles_found(int64_t n, int depths, uint32_t seed) {
  const ParallelConfig grid{1, 1, 4, 1};
  ASSERT_EQ(mpi().world_size(), grid.world_size()) << "run this case with mpiexec -n " << grid.world_size();
  const std::string model = std::string(TESSERA_TEST_DATA) + "/needle/needle.gguf";
  const int64_t rss_before = rss_bytes();
  CpRig rig(grid, model, n + 64);
  LockstepRunner runner(rig);
  const int rank = mpi().world_rank();
  std::mt19937 rng(seed);
  for (int i = 0; i < depths; ++i) {
    const int64_t depth = std::uniform_int_distribution<int64_t>(1, n - 2)(rng);
    const int32_t needle = kFirstNeedle + std::uniform_int_distribution<int32_t>(0, 15)(rng);
    const std::vector<int32_t> prompt = haystack(rng, n, depth, needle);
    Generator gen(runner);
    GenerateOptions o;
    o.max_new_tokens = 1;
    o.prefill_chunk = kChunk;
    int32_t answer = -1;
    const auto t0 = std::chrono::steady_clock::now();
    gen.generate(prompt, o, [&](int32_t t) {
      answer = t;
      return true;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(answer, needle) << n << " tokens, needle at depth " << depth << " (seed " << seed << ")";
    if (rank == 0)
      std::printf("needle %d/%d: %lld tokens over cp 4, depth %lld (%.1f%%): answer %d, needle %d, %.1f s\n", i + 1,
                  depths, static_cast<long long>(n), static_cast<long long>(depth), 100.0 * depth / n, answer,
                  needle, s);
  }

  // Memory per rank. The bound: what the process held before the model, plus the model
  // file (mapped), plus this rank's KV pool, plus a fixed workspace that depends on the
  // chunk, not on the prompt: activations of one chunk's rows on this rank and the ring
  // buffers are well under 1 MiB for this model; 24 MiB covers them, the prompt and
  // block-table vectors of the coordinator role (4 bytes per token: 0.5 MiB at 128K),
  // and allocator/MPI slack. A prefill that held the whole prompt's activations at once
  // would need n x ~150 floats (75 MiB at 128K) and fails it.
  const int64_t kv_pool = rig.worker->kv_shape().bytes();
  const int64_t kv_total = 2 * n * rig.worker->config().kv_dim() * 4 * rig.worker->config().n_layers;
  EXPECT_LE(kv_pool, kv_total / 4 + 2 * rig.worker->kv_shape().block_floats() * 4 * 2)
      << "KV pool per rank should be about total / C";
  const int64_t file = static_cast<int64_t>(std::filesystem::file_size(model));
  const int64_t workspace = 24ll << 20;
  const int64_t bound = rss_before + file + kv_pool + workspace;
  const int64_t peak = peak_rss_bytes();
  EXPECT_LE(peak, bound) << "rank " << rank << ": peak RSS " << (peak >> 20) << " MiB over the bound";
  const std::vector<int64_t> peaks = rig.gather(peak), bounds = rig.gather(bound);
  if (rank == 0)
    for (size_t r = 0; r < peaks.size(); ++r)
      std::printf("rank %zu: peak RSS %.1f MiB <= bound %.1f MiB (before model %.1f MiB + model %.2f MiB + KV pool "
                  "%.2f MiB + workspace 24 MiB)\n",
                  r, peaks[r] / 1048576.0, bounds[r] / 1048576.0, rss_before / 1048576.0, file / 1048576.0,
                  kv_pool / 1048576.0);
}

TEST(CpNeedle, Cp4_32K) { expect_needles_found(32768, 3, 7); }
// 128K tokens: minutes on 2 cores, outside the default run (tests/cp/CMakeLists.txt).
TEST(CpNeedleLong, Cp4_128K) { expect_needles_found(131072, 5, 11); }

}  // namespace
}  // namespace tessera::test
