// The MoE layer (router, dispatch, grouped expert FFNs, combine) against a plain
// per-token reference written from the definition: y = sum_j gate_j * expert_j(x)
// (+ shared(x)), in double precision.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/thread_pool.h"
#include "model/moe_layer.h"

namespace tessera {
namespace {

struct Dense {
  std::vector<float> v;
  kernels::WeightMatrix m(int64_t rows, int64_t cols) const {
    kernels::WeightMatrix w;
    w.rows = rows;
    w.cols = cols;
    w.data = v.data();
    w.row_stride = cols * 4;
    return w;
  }
};

Dense random_matrix(std::mt19937& rng, int64_t rows, int64_t cols) {
  std::normal_distribution<float> n(0.0f, 1.0f / std::sqrt(static_cast<float>(cols)));
  Dense d;
  d.v.resize(rows * cols);
  for (float& x : d.v) x = n(rng);
  return d;
}

// y [dim] += g * down(silu(gate x) * up x), in double.
void ref_ffn(const MoeExpertWeights& e, const float* x, double g, std::vector<double>& y) {
  const int64_t ff = e.up.rows, dim = e.up.cols;
  std::vector<double> h(ff);
  auto row = [](const kernels::WeightMatrix& w, int64_t r) { return static_cast<const float*>(w.data) + r * w.cols; };
  for (int64_t i = 0; i < ff; ++i) {
    double a = 0, b = 0;
    for (int64_t d = 0; d < dim; ++d) {
      a += double(row(e.gate, i)[d]) * x[d];
      b += double(row(e.up, i)[d]) * x[d];
    }
    h[i] = a / (1.0 + std::exp(-a)) * b;
  }
  for (int64_t d = 0; d < dim; ++d) {
    double s = 0;
    for (int64_t i = 0; i < ff; ++i) s += double(row(e.down, d)[i]) * h[i];
    y[d] += g * s;
  }
}

void check_layer(MoeRouterKind kind, int64_t E, int64_t k, bool shared, int64_t T) {
  std::mt19937 rng(11);
  ModelConfig c;
  c.dim = 32;
  c.ffn = FfnKind::kSwiGlu;
  c.moe.n_experts = E;
  c.moe.top_k = k;
  c.moe.expert_ffn_dim = 24;
  c.moe.router = kind;
  c.moe.shared_ffn_dim = shared ? 16 : 0;
  std::vector<Dense> store;
  store.reserve(3 * E + 4);
  MoeLayerWeights w;
  store.push_back(random_matrix(rng, E, c.dim));
  w.router = store.back().m(E, c.dim);
  for (int64_t e = 0; e < E; ++e) {
    MoeExpertWeights x;
    store.push_back(random_matrix(rng, 24, c.dim));
    x.gate = store.back().m(24, c.dim);
    store.push_back(random_matrix(rng, 24, c.dim));
    x.up = store.back().m(24, c.dim);
    store.push_back(random_matrix(rng, c.dim, 24));
    x.down = store.back().m(c.dim, 24);
    w.experts.push_back(x);
  }
  if (shared) {
    store.push_back(random_matrix(rng, 16, c.dim));
    w.shared.gate = store.back().m(16, c.dim);
    store.push_back(random_matrix(rng, 16, c.dim));
    w.shared.up = store.back().m(16, c.dim);
    store.push_back(random_matrix(rng, c.dim, 16));
    w.shared.down = store.back().m(c.dim, 16);
  }
  std::normal_distribution<float> n(0, 1);
  std::vector<float> x(T * c.dim), y(T * c.dim);
  for (float& v : x) v = n(rng);
  std::vector<int32_t> ids(T);
  for (int64_t t = 0; t < T; ++t) ids[t] = static_cast<int32_t>(t * 37 % 500);

  kernels::ThreadPool pool(2);
  MoeParallel par;
  par.n_local = E;
  MoeLayer layer(c, par, pool);
  MoeLayerStats st;
  layer.forward(w, x.data(), ids.data(), T, y.data(), st);

  // The routing the layer must have used, from the router's own definition.
  std::vector<float> logits(T * E);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) {
      double s = 0;
      for (int64_t d = 0; d < c.dim; ++d) s += double(store[0].v[e * c.dim + d]) * x[t * c.dim + d];
      logits[t * E + e] = static_cast<float>(s);
    }
  Routing r;
  switch (kind) {
    case MoeRouterKind::kTopK: moe_route_topk(logits.data(), T, E, k, true, r); break;
    case MoeRouterKind::kHash: moe_route_hash(ids.data(), T, E, k, r); break;
    case MoeRouterKind::kBalanced: moe_route_balanced(logits.data(), T, E, 8, true, r); break;
  }
  int64_t routed = 0;
  for (const int64_t v : st.tokens_per_expert) routed += v;
  EXPECT_EQ(routed, T * k);
  EXPECT_EQ(st.tokens, T);
  double worst = 0;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> ref(c.dim, 0.0);
    for (int64_t j = 0; j < k; ++j) ref_ffn(w.experts[r.expert[t * k + j]], x.data() + t * c.dim, r.gate[t * k + j], ref);
    if (shared) ref_ffn(w.shared, x.data() + t * c.dim, 1.0, ref);
    for (int64_t d = 0; d < c.dim; ++d) worst = std::max(worst, std::fabs(ref[d] - y[t * c.dim + d]));
  }
  EXPECT_LT(worst, 2e-5) << "E " << E << " k " << k;
}

TEST(MoeLayer, TopKMatchesThePlainReference) {
  check_layer(MoeRouterKind::kTopK, 8, 2, false, 37);
  check_layer(MoeRouterKind::kTopK, 64, 1, false, 5);
  check_layer(MoeRouterKind::kTopK, 16, 4, false, 1);  // decode: one token
}

TEST(MoeLayer, SharedExpertAndHashAndBalancedRouters) {
  check_layer(MoeRouterKind::kTopK, 8, 2, true, 20);
  check_layer(MoeRouterKind::kHash, 32, 2, false, 40);
  check_layer(MoeRouterKind::kBalanced, 8, 1, false, 41);
}

TEST(MoeLayerStats, ImbalanceIsMaxOverMean) {
  MoeLayerStats s;
  s.tokens_per_expert = {4, 0, 2, 2};
  EXPECT_DOUBLE_EQ(s.imbalance(), 2.0);
  s.tokens_per_expert = {0, 0};
  EXPECT_DOUBLE_EQ(s.imbalance(), 0.0);
}

}  // namespace
}  // namespace tessera
