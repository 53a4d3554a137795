// Context parallelism against the single-rank run (docs/CONTEXT_PARALLEL.md): for
// prompts of 4K-16K tokens, prefilled in one ring pass and in chunks, at CP 2 and 4,
// alone and with TP 2 or PP 2 inside each CP rank:
//   - logits of the last 8 positions within 1e-4 of the single-rank run, relative to
//     the row's largest logit (max |cp - ref| <= 1e-4 * max |ref| per row);
//   - the greedy continuation (8 tokens, decoded over the sharded KV cache) identical;
//   - every causally visible (query, KV) pair attended exactly once over the CP ranks,
//     and the per-rank attention work of a prefill within 5% (zigzag balance).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "coordinator/cp_steps.h"
#include "coordinator/generator.h"
#include "tests/cp/cp_rig.h"
#include "tests/cp/cp_test_env.h"

namespace tessera::test {
namespace {

constexpr int kTail = 8;  // positions whose logits are compared, and tokens generated

std::vector<int32_t> random_prompt(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, 319);
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (auto& t : p) t = tok(rng);
  p[0] = 1;  // BOS
  return p;
}

struct RunOutput {
  std::vector<float> logits;    // [kTail][vocab]: the last kTail positions
  std::vector<int32_t> greedy;  // kTail tokens after the prompt
};

// Prefill all but the last kTail tokens in chunks, then one step that scores the last
// kTail (a split slice under CP: its output rows live on several ranks), then greedy
// decoding of kTail - 1 more tokens over the (sharded) KV cache.
RunOutput run(StepRunner& runner, const std::vector<int32_t>& prompt, int64_t chunk) {
  RunOutput out;
  const int64_t n = static_cast<int64_t>(prompt.size());
  const int cp = runner.cp_size();
  KvBlockAllocator alloc(runner.kv_blocks());
  SequenceStep seq;
  seq.seq_id = 1;
  double fw = 0;
  prefill_sequence(runner, alloc, seq, std::span(prompt).first(n - kTail), chunk, false, &fw);
  seq.tokens.assign(prompt.end() - kTail, prompt.end());
  seq.pos0 = n - kTail;
  seq.n_outputs = kTail;
  seq.return_logits = true;
  StepPlan plan;
  for (int i = 0; i < kTail; ++i) {
    EXPECT_TRUE(step_kv_ensure(alloc, seq, cp, runner.kv_block_size()));
    plan.sequences.assign(1, seq);
    StepResult r = runner.run_step(plan);
    step_kv_advance(seq, cp);
    if (i == 0) out.logits = std::move(r.outputs.at(0).logits);
    out.greedy.push_back(r.outputs.at(0).samples.back().token);
    seq.pos0 += static_cast<int64_t>(seq.tokens.size());
    seq.tokens.assign(1, out.greedy.back());
    seq.n_outputs = 1;
    seq.return_logits = false;
  }
  alloc.release(seq.block_table);
  return out;
}

// max over rows of max |a - b| / max |b|.
double worst_relative(const std::vector<float>& a, const std::vector<float>& b, int64_t vocab) {
  double worst = 0;
  for (int64_t r = 0; r < kTail; ++r) {
    double diff = 0, scale = 0;
    for (int64_t j = 0; j < vocab; ++j) {
      diff = std::max(diff, std::fabs(double(a[r * vocab + j]) - b[r * vocab + j]));
      scale = std::max(scale, std::fabs(double(b[r * vocab + j])));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

void expect_matches_single_rank(const ParallelConfig& grid, std::vector<int64_t> lengths) {
  ASSERT_EQ(mpi().world_size(), grid.world_size()) << "run this case with mpiexec -n " << grid.world_size();
  const std::string model = long_context_tiny_llama();
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  CpRig rig(grid, model, longest + 64);
  LockstepRunner runner(rig);
  ASSERT_EQ(runner.cp_size(), grid.cp);
  const int rank = mpi().world_rank();
  const std::vector<int64_t> layers = rig.gather(rig.worker->plan().n_layers());
  // The single-rank reference, on rank 0 only.
  std::unique_ptr<Worker> single;
  if (rank == 0) {
    WorkerOptions o;
    o.threads = 1;
    o.max_kv_tokens = longest + 64;
    single = std::make_unique<Worker>(model, o);
  }
  for (const int64_t n : lengths) {
    const auto prompt = random_prompt(n, static_cast<uint32_t>(n));
    RunOutput ref;
    if (rank == 0) {
      LocalStepRunner ref_runner(*single);
      ref = run(ref_runner, prompt, 512);
    }
    // Chunked (earlier chunks' KV sharded: pass-Q plus the ring) and one ring pass.
    for (const int64_t chunk : {n / 4, n}) {
      const int64_t pairs0 = rig.cp_stats().visible_pairs;
      const RunOutput cp = run(runner, prompt, chunk);
      // Attention work of this run on every rank.
      const std::vector<int64_t> work = rig.gather(rig.cp_stats().visible_pairs - pairs0);
      if (rank != 0) continue;
      const int64_t vocab = single->config().vocab_size;
      ASSERT_EQ(cp.logits.size(), ref.logits.size());
      const double rel = worst_relative(cp.logits, ref.logits, vocab);
      EXPECT_LE(rel, 1e-4) << "n " << n << " chunk " << chunk;
      EXPECT_EQ(cp.greedy, ref.greedy) << "n " << n << " chunk " << chunk;
      // Each CP ring (fixed tp, pp) attends every causally visible pair exactly once per
      // layer: n(n+1)/2 for the prompt, then n + i for the decode step at position n + i.
      int64_t per_layer = n * (n + 1) / 2;
      for (int i = 1; i < kTail; ++i) per_layer += n + i;
      int64_t lo = INT64_MAX, hi = 0;
      for (int pp = 0; pp < grid.pp; ++pp)
        for (int tp = 0; tp < grid.tp; ++tp) {
          int64_t sum = 0;
          for (int c = 0; c < grid.cp; ++c) {
            const int world = rig.topology.rank_of(pp, c, tp);
            sum += work[world];
            // Per layer: pipeline stages may own different numbers of layers.
            lo = std::min(lo, work[world] / layers[world]);
            hi = std::max(hi, work[world] / layers[world]);
          }
          EXPECT_EQ(sum, layers[rig.topology.rank_of(pp, 0, tp)] * per_layer)
              << "n " << n << " chunk " << chunk << " pp " << pp << " tp " << tp;
        }
      const double imbalance = static_cast<double>(hi - lo) / static_cast<double>(hi);
      EXPECT_LE(imbalance, 0.05) << "n " << n << " chunk " << chunk << ": attention pairs per rank from " << lo
                                 << " to " << hi;
      std::printf("cp %d tp %d pp %d: n %lld chunk %lld: logits rel %.2e, greedy equal %d, work per rank and layer %lld..%lld "
                  "(imbalance %.3f%%)\n",
                  grid.cp, grid.tp, grid.pp, static_cast<long long>(n), static_cast<long long>(chunk), rel,
                  cp.greedy == ref.greedy ? 1 : 0, static_cast<long long>(lo), static_cast<long long>(hi),
                  100 * imbalance);
    }
  }
}

TEST(CpExact, Cp2) { expect_matches_single_rank({1, 1, 2, 1}, {4096}); }
TEST(CpExact, Cp4) { expect_matches_single_rank({1, 1, 4, 1}, {4096}); }
// 16K tokens: ~3 minutes on 2 cores, label "long" (tests/cp/CMakeLists.txt).
TEST(CpExactLong, Cp4) { expect_matches_single_rank({1, 1, 4, 1}, {16384}); }
TEST(CpExact, Tp2Cp2) { expect_matches_single_rank({2, 1, 2, 1}, {4096}); }
TEST(CpExact, Pp2Cp2) { expect_matches_single_rank({1, 2, 2, 1}, {4096}); }
TEST(CpExact, Tp2Cp4) { expect_matches_single_rank({2, 1, 4, 1}, {4096}); }

}  // namespace
}  // namespace tessera::test
