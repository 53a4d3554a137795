// moe_bench: one mixture-of-experts layer (model/moe_layer.h) over the ranks of one
// stage, as `tessera generate --tp N --ep E` runs it, with random F32 weights. Reports
// per step: router / dispatch / expert compute / combine time (the slowest rank's),
// tokens/s, all-to-all payload bytes per token and the expert load. Not part of ctest;
// results and the commands that produced them are in docs/BENCHMARKS.md.
//
//   mpiexec -n N moe_bench [--experts 64] [--top-k 2] [--dim 512] [--ffn 256] [--ep N]
//       [--threads 1] [--tokens 1,16,128] [--steps 20] [--router topk|hash|sbase] [--overlap 1|0]
// Each step takes a different batch (8 in rotation), so a decode step reads experts
// that the previous one did not leave in cache.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "collectives/mpi_communicator.h"
#include "collectives/mpi_context.h"
#include "common/error.h"
#include "kernels/thread_pool.h"
#include "model/moe_layer.h"

namespace tessera {
namespace {

struct Options {
  int64_t experts = 64, top_k = 2, dim = 512, ffn = 256, steps = 20;
  int ep = 0, threads = 1, overlap = 1;
  std::vector<int64_t> tokens = {1, 16, 128};
  std::string router = "topk";
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    TESSERA_REQUIRE(i + 1 < argc, ErrorKind::kInvalidInput, "flag ", f, " needs a value");
    const std::string v = argv[++i];
    if (f == "--experts") o.experts = std::stoll(v);
    else if (f == "--top-k") o.top_k = std::stoll(v);
    else if (f == "--dim") o.dim = std::stoll(v);
    else if (f == "--ffn") o.ffn = std::stoll(v);
    else if (f == "--steps") o.steps = std::stoll(v);
    else if (f == "--ep") o.ep = std::stoi(v);
    else if (f == "--threads") o.threads = std::stoi(v);
    else if (f == "--overlap") o.overlap = std::stoi(v);
    else if (f == "--router") o.router = v;
    else if (f == "--tokens") {
      o.tokens.clear();
      std::stringstream ss(v);
      for (std::string t; std::getline(ss, t, ',');) o.tokens.push_back(std::stoll(t));
    } else {
      TESSERA_FAIL(ErrorKind::kInvalidInput, "unknown flag ", f);
    }
  }
  return o;
}

std::vector<float> gaussian(uint64_t seed, size_t n, float sd) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
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

int run(int argc, char** argv) {
  MpiContext mpi(&argc, &argv);
  const Options o = parse(argc, argv);
  const int world = mpi.world_size(), rank = mpi.world_rank();
  const int ep = o.ep == 0 ? world : o.ep;
  TESSERA_REQUIRE(world % ep == 0 && o.experts % ep == 0, ErrorKind::kInvalidInput, "--ep ", ep,
                  " must divide the ranks (", world, ") and the experts (", o.experts, ")");
  // The stage's ranks: TP group = all ranks, EP groups of `ep` consecutive ranks.
  std::unique_ptr<MpiCommunicator> tp, epc;
  if (world > 1) tp = MpiCommunicator::dup(mpi.world(), "tp");
  if (ep > 1) epc = MpiCommunicator::split(mpi.world(), rank / ep, rank % ep, "ep");

  ModelConfig c;
  c.dim = o.dim;
  c.ffn = FfnKind::kSwiGlu;
  c.moe.n_experts = o.experts;
  c.moe.top_k = o.top_k;
  c.moe.expert_ffn_dim = o.ffn;
  c.moe.router = moe_router_kind_from(o.router, "--router");
  c.moe.validate("moe_bench");
  MoeParallel par;
  par.tp = tp.get();
  par.ep = epc.get();
  par.n_local = o.experts / ep;
  par.expert_begin = (rank % ep) * par.n_local;
  par.overlap = o.overlap != 0;

  // Weights: the router is the same on every rank (same seed); expert e's seed is e.
  std::vector<std::vector<float>> store;
  store.reserve(1 + 3 * par.n_local);
  MoeLayerWeights w;
  store.push_back(gaussian(1, o.experts * o.dim, 1.0f));
  w.router = view(store.back(), o.experts, o.dim);
  const float s_in = 1.0f / std::sqrt(static_cast<float>(o.dim)), s_out = 1.0f / std::sqrt(static_cast<float>(o.ffn));
  for (int64_t e = par.expert_begin; e < par.expert_begin + par.n_local; ++e) {
    MoeExpertWeights x;
    store.push_back(gaussian(100 + 3 * e, o.ffn * o.dim, s_in));
    x.gate = view(store.back(), o.ffn, o.dim);
    store.push_back(gaussian(101 + 3 * e, o.ffn * o.dim, s_in));
    x.up = view(store.back(), o.ffn, o.dim);
    store.push_back(gaussian(102 + 3 * e, o.dim * o.ffn, s_out));
    x.down = view(store.back(), o.dim, o.ffn);
    w.experts.push_back(x);
  }
  kernels::ThreadPool pool(o.threads);
  MoeLayer layer(c, par, pool);
  if (rank == 0) {
    std::printf("moe_bench: %d ranks x %d threads, ep %d%s; %lld experts (%lld per rank) of %lld units, dim %lld, top-%lld "
                "%s; expert weights %.1f MB per rank (F32)\n",
                world, o.threads, ep, ep > 1 ? (o.overlap ? " (overlapped dispatch)" : " (blocking dispatch)") : "", static_cast<long long>(o.experts), static_cast<long long>(par.n_local),
                static_cast<long long>(o.ffn), static_cast<long long>(o.dim), static_cast<long long>(o.top_k),
                o.router.c_str(), 3.0 * 4 * o.ffn * o.dim * par.n_local / 1e6);
    std::printf("%6s %9s %9s %9s %9s %9s %11s %12s %9s\n", "tokens", "step_ms", "router", "dispatch", "compute",
                "combine", "tokens/s", "a2a_B/token", "imbalance");
  }
  for (const int64_t T : o.tokens) {
    constexpr int64_t kBatches = 8;
    const std::vector<float> xs = gaussian(7 + T, kBatches * T * o.dim, 1.0f);
    std::vector<int32_t> ids(kBatches * T);
    for (int64_t t = 0; t < kBatches * T; ++t) ids[t] = static_cast<int32_t>((t * 7919) % 32000);
    auto x_of = [&](int64_t i) { return xs.data() + (i % kBatches) * T * o.dim; };
    auto ids_of = [&](int64_t i) { return ids.data() + (i % kBatches) * T; };
    std::vector<float> out(T * o.dim);
    MoeLayerStats warm;
    for (int i = 0; i < 3; ++i) layer.forward(w, x_of(i), ids_of(i), T, out.data(), warm);
    MoeLayerStats st;
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < o.steps; ++i) layer.forward(w, x_of(i + 3), ids_of(i + 3), T, out.data(), st);
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double phases[5] = {st.router_s, st.dispatch_s, st.compute_s, st.combine_s, wall};
    double bytes = static_cast<double>(st.alltoall_bytes);
    std::vector<int64_t> load = st.tokens_per_expert;
    MPI_Allreduce(MPI_IN_PLACE, phases, 5, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &bytes, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, load.data(), static_cast<int>(load.size()), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MoeLayerStats all;
    all.tokens_per_expert = load;
    const double n = static_cast<double>(o.steps), ms = 1e3 / n;
    if (rank == 0)
      std::printf("%6lld %9.3f %9.3f %9.3f %9.3f %9.3f %11.0f %12.0f %9.2f\n", static_cast<long long>(T),
                  phases[4] * ms, phases[0] * ms, phases[1] * ms, phases[2] * ms, phases[3] * ms,
                  T * n / phases[4], bytes / (T * n), all.imbalance());
  }
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  try {
    return tessera::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe_bench: %s\n", e.what());
    return 1;
  }
}
