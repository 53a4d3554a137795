// The MoE layer split over MPI ranks (TP group = the world, EP groups of 1, 2 or 4
// ranks) equals the same layer on one rank with every expert: each router, blocking
// and overlapped dispatch, a shared expert, batches smaller than the TP group (empty
// shares) and ranks that receive no rows. Run under mpiexec -n 4 (moe_layer_mpi_np4).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "collectives/mpi_communicator.h"
#include "collectives/mpi_context.h"
#include "kernels/thread_pool.h"
#include "model/moe_layer.h"

namespace tessera {
namespace {

constexpr int64_t kDim = 32, kFfn = 24, kShared = 16, kE = 8;

std::vector<float> gaussian(uint64_t seed, int64_t n, float sd) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

kernels::WeightMatrix view(const std::vector<float>& v, int64_t rows, int64_t cols) {
  kernels::WeightMatrix w;
  w.rows = rows;
  w.cols = cols;
  w.data = v.data();
  w.row_stride = cols * 4;
  return w;
}

// Every expert's weights, the same on every rank (seeded by expert id).
struct AllWeights {
  std::vector<std::vector<float>> store;
  MoeLayerWeights all;
  AllWeights() {
    store.reserve(3 * kE + 4);
    store.push_back(gaussian(1, kE * kDim, 1.0f));
    all.router = view(store.back(), kE, kDim);
    for (int64_t e = 0; e < kE + 1; ++e) {  // the last one is the shared expert
      const int64_t ff = e < kE ? kFfn : kShared;
      MoeExpertWeights x;
      store.push_back(gaussian(10 + 3 * e, ff * kDim, 0.2f));
      x.gate = view(store.back(), ff, kDim);
      store.push_back(gaussian(11 + 3 * e, ff * kDim, 0.2f));
      x.up = view(store.back(), ff, kDim);
      store.push_back(gaussian(12 + 3 * e, kDim * ff, 0.2f));
      x.down = view(store.back(), kDim, ff);
      if (e < kE) {
        all.experts.push_back(x);
      } else {
        all.shared = x;
      }
    }
  }
};

ModelConfig config(MoeRouterKind kind, bool shared) {
  ModelConfig c;
  c.dim = kDim;
  c.ffn = FfnKind::kSwiGlu;
  c.moe.n_experts = kE;
  c.moe.top_k = kind == MoeRouterKind::kBalanced ? 1 : 2;
  c.moe.expert_ffn_dim = kFfn;
  c.moe.router = kind;
  c.moe.shared_ffn_dim = shared ? kShared : 0;
  return c;
}

TEST(MoeLayerMpi, SplitEqualsOneRank) {
  int world = 1, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const AllWeights w;
  kernels::ThreadPool pool(1);
  auto tp = MpiCommunicator::dup(MPI_COMM_WORLD, "tp");
  for (int ep = 1; ep <= world; ep *= 2) {
    if (world % ep != 0 || kE % ep != 0) continue;
    auto epc = MpiCommunicator::split(MPI_COMM_WORLD, rank / ep, rank % ep, "ep");
    for (const MoeRouterKind kind : {MoeRouterKind::kTopK, MoeRouterKind::kHash, MoeRouterKind::kBalanced}) {
      for (const bool overlap : {true, false}) {
        const bool shared = kind == MoeRouterKind::kTopK;
        const ModelConfig c = config(kind, shared);
        MoeParallel par;
        par.tp = tp.get();
        par.ep = ep > 1 ? epc.get() : nullptr;
        par.n_local = kE / ep;
        par.expert_begin = (rank % ep) * par.n_local;
        par.overlap = overlap;
        MoeLayerWeights mine;
        mine.router = w.all.router;
        if (shared) mine.shared = w.all.shared;
        for (int64_t e = par.expert_begin; e < par.expert_begin + par.n_local; ++e) mine.experts.push_back(w.all.experts[e]);
        MoeLayer split(c, par, pool);
        MoeParallel one;
        one.n_local = kE;
        MoeLayerWeights all = w.all;
        if (!shared) all.shared = MoeExpertWeights{};
        MoeLayer single(c, one, pool);
        for (const int64_t T : {int64_t{37}, int64_t{1}, int64_t{3}, int64_t{64}}) {
          const std::vector<float> x = gaussian(100 + T, T * kDim, 1.0f);
          std::vector<int32_t> ids(T);
          for (int64_t t = 0; t < T; ++t) ids[t] = static_cast<int32_t>(t * 13 % 97);
          std::vector<float> got(T * kDim, -1.0f), want(T * kDim);
          MoeLayerStats s1, s2;
          split.forward(mine, x.data(), ids.data(), T, got.data(), s1);
          single.forward(all, x.data(), ids.data(), T, want.data(), s2);
          double diff = 0;
          for (int64_t i = 0; i < T * kDim; ++i) diff = std::max(diff, std::fabs(double(got[i]) - want[i]));
          EXPECT_LT(diff, 1e-5) << "ep " << ep << " router " << moe_router_kind_name(kind) << " overlap " << overlap
                                << " T " << T;
          // Every (token, expert) pair was routed exactly once over the TP group.
          int64_t pairs = 0;
          for (const int64_t n : s1.tokens_per_expert) pairs += n;
          MPI_Allreduce(MPI_IN_PLACE, &pairs, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
          EXPECT_EQ(pairs, T * c.moe.top_k);
        }
      }
    }
  }
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  tessera::MpiContext mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.world_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
