#include "model/moe_router.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <glog/logging.h>

#include "common/error.h"

namespace tessera {

void Routing::resize(int64_t t, int64_t kk) {
  n_tokens = t;
  k = kk;
  expert.assign(static_cast<size_t>(t * kk), 0);
  gate.assign(static_cast<size_t>(t * kk), 0.0f);
}

void moe_route_topk(const float* logits, int64_t T, int64_t E, int64_t k, bool normalize, Routing& out) {
  CHECK(k >= 1 && k <= E);
  out.resize(T, k);
  std::vector<float> p(static_cast<size_t>(E));
  std::vector<int32_t> idx(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    const float* l = logits + t * E;
    const float mx = *std::max_element(l, l + E);
    float sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(l[e] - mx));
    for (int64_t e = 0; e < E; ++e) p[e] /= sum;
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float kept = 0;
    for (int64_t j = 0; j < k; ++j) kept += p[idx[j]];
    for (int64_t j = 0; j < k; ++j) {
      out.expert[t * k + j] = idx[j];
      out.gate[t * k + j] = normalize ? p[idx[j]] / kept : p[idx[j]];
    }
  }
}

uint64_t moe_splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void moe_route_hash(const int32_t* ids, int64_t T, int64_t E, int64_t k, Routing& out) {
  CHECK(k >= 1 && k <= E);
  out.resize(T, k);
  for (int64_t t = 0; t < T; ++t) {
    uint64_t state = static_cast<uint64_t>(static_cast<uint32_t>(ids[t]));
    int32_t* ex = out.expert.data() + t * k;
    for (int64_t j = 0; j < k;) {
      const auto e = static_cast<int32_t>(moe_splitmix64(state) % static_cast<uint64_t>(E));
      if (std::find(ex, ex + j, e) != ex + j) continue;  // k distinct experts; terminates since k <= E
      ex[j] = e;
      out.gate[t * k + j] = 1.0f / static_cast<float>(k);
      ++j;
    }
  }
}

namespace {

double logsumexp(const double* v, int64_t n, int64_t stride) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, v[i * stride]);
  if (!std::isfinite(mx)) return mx;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(v[i * stride] - mx);
  return mx + std::log(s);
}

}  // namespace

void moe_route_balanced(const float* logits, int64_t T, int64_t E, int64_t iters, bool normalize, Routing& out) {
  out.resize(T, 1);
  if (T == 0) return;
  // log P = logits + u[t] + v[e]; Sinkhorn alternates the row (sum 1) and column
  // (sum T/E) constraints. Doubles: the scores of 512 x 512 plans stay well ordered.
  std::vector<double> lp(static_cast<size_t>(T * E)), u(static_cast<size_t>(T), 0.0), v(static_cast<size_t>(E), 0.0);
  std::vector<double> row(static_cast<size_t>(std::max(T, E)));
  const double log_col = std::log(static_cast<double>(T) / static_cast<double>(E));
  for (int64_t it = 0; it < iters; ++it) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t e = 0; e < E; ++e) row[e] = logits[t * E + e] + v[e];
      u[t] = -logsumexp(row.data(), E, 1);
    }
    for (int64_t e = 0; e < E; ++e) {
      for (int64_t t = 0; t < T; ++t) row[t] = logits[t * E + e] + u[t];
      v[e] = log_col - logsumexp(row.data(), T, 1);
    }
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) lp[t * E + e] = logits[t * E + e] + u[t] + v[e];
  // Greedy in descending plan order (ties: lower pair index). Capacity q + 1 while
  // fewer than r = T mod E experts have reached it, q afterwards: every token finds a
  // place (total capacity is T) and every expert ends with q or q + 1 tokens.
  std::vector<int64_t> order(static_cast<size_t>(T * E));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return lp[a] > lp[b] || (lp[a] == lp[b] && a < b); });
  const int64_t q = T / E, r = T % E;
  std::vector<int64_t> load(static_cast<size_t>(E), 0);
  std::vector<char> done(static_cast<size_t>(T), 0);
  int64_t full = 0, left = T;
  for (const int64_t pair : order) {
    if (left == 0) break;
    const int64_t t = pair / E, e = pair % E;
    if (done[t]) continue;
    const int64_t cap = full < r ? q + 1 : q;
    if (load[e] >= cap) continue;
    if (++load[e] == q + 1) ++full;
    done[t] = 1;
    --left;
    out.expert[t] = static_cast<int32_t>(e);
  }
  CHECK_EQ(left, 0) << "balanced assignment left tokens unassigned";
  for (int64_t t = 0; t < T; ++t) {
    if (normalize) {
      out.gate[t] = 1.0f;
      continue;
    }
    const float* l = logits + t * E;
    const float mx = *std::max_element(l, l + E);
    float sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += std::exp(l[e] - mx);
    out.gate[t] = std::exp(l[out.expert[t]] - mx) / sum;
  }
}

std::vector<int64_t> moe_expert_counts(const Routing& r, int64_t E) {
  std::vector<int64_t> c(static_cast<size_t>(E), 0);
  for (const int32_t e : r.expert) ++c[e];
  return c;
}

}  // namespace tessera
