#include "model/moe_layer.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/error.h"

namespace tessera {

namespace k = kernels;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void MoeLayerStats::add(const MoeLayerStats& o) {
  if (tokens_per_expert.size() < o.tokens_per_expert.size()) tokens_per_expert.resize(o.tokens_per_expert.size(), 0);
  for (size_t e = 0; e < o.tokens_per_expert.size(); ++e) tokens_per_expert[e] += o.tokens_per_expert[e];
  tokens += o.tokens;
  steps = std::max(steps, o.steps);
  router_s += o.router_s;
  dispatch_s += o.dispatch_s;
  compute_s += o.compute_s;
  combine_s += o.combine_s;
  alltoall_bytes += o.alltoall_bytes;
}

double MoeLayerStats::imbalance() const {
  if (tokens_per_expert.empty()) return 0;
  int64_t total = 0, mx = 0;
  for (const int64_t n : tokens_per_expert) {
    total += n;
    mx = std::max(mx, n);
  }
  if (total == 0) return 0;
  return static_cast<double>(mx) * static_cast<double>(tokens_per_expert.size()) / static_cast<double>(total);
}

MoeLayer::MoeLayer(const ModelConfig& config, MoeParallel parallel, k::ThreadPool& pool)
    : c_(config), par_(parallel), pool_(pool) {
  if (par_.ep != nullptr) {
    ep_size_ = par_.ep->size();
    ep_rank_ = par_.ep->rank();
  }
  if (par_.tp != nullptr) {
    tp_size_ = par_.tp->size();
    tp_rank_ = par_.tp->rank();
  }
  const int64_t E = c_.moe.n_experts;
  TESSERA_REQUIRE(E % ep_size_ == 0 && par_.n_local == E / ep_size_ && par_.expert_begin == ep_rank_ * par_.n_local,
                  ErrorKind::kInternal, "MoE layer: experts [", par_.expert_begin, ", ",
                  par_.expert_begin + par_.n_local, ") do not match EP rank ", ep_rank_, " of ", ep_size_, " over ",
                  E, " experts");
  TESSERA_REQUIRE(c_.ffn == FfnKind::kSwiGlu || c_.ffn == FfnKind::kGeGlu, ErrorKind::kUnsupported,
                  "MoE experts must be gated FFNs (swiglu or geglu), the config says ", ffn_kind_name(c_.ffn));
}

void MoeLayer::expert_ffn(const MoeExpertWeights& e, const float* x, int64_t n, float* y) {
  const int64_t ff = e.up.rows;
  if (static_cast<int64_t>(gate_.size()) < n * ff) {
    gate_.resize(n * ff);
    up_.resize(n * ff);
  }
  k::matmul(pool_, e.gate, x, n, gate_.data());
  k::matmul(pool_, e.up, x, n, up_.data());
  if (c_.ffn == FfnKind::kGeGlu) {
    k::gelu_mul(gate_.data(), up_.data(), n * ff);
  } else {
    k::silu_mul(gate_.data(), up_.data(), n * ff);
  }
  k::matmul(pool_, e.down, gate_.data(), n, y);
}

void MoeLayer::run_expert(const MoeLayerWeights& w, int64_t i, int only, int skip, const std::vector<int64_t>& seg) {
  const int64_t dim = c_.dim, n_local = par_.n_local;
  const int r0 = only >= 0 ? only : 0, r1 = only >= 0 ? only + 1 : ep_size_;
  int64_t n_i = 0;
  for (int r = r0; r < r1; ++r)
    if (r != skip) n_i += count_recv_[r * n_local + i];
  if (n_i == 0) return;
  if (static_cast<int64_t>(ex_in_.size()) < n_i * dim) {
    ex_in_.resize(n_i * dim);
    ex_out_.resize(n_i * dim);
  }
  int64_t at = 0;
  for (int r = r0; r < r1; ++r) {
    if (r == skip) continue;
    const int64_t n = count_recv_[r * n_local + i];
    std::copy_n(recv_.data() + seg[r * n_local + i] * dim, n * dim, ex_in_.data() + at * dim);
    at += n;
  }
  expert_ffn(w.experts[i], ex_in_.data(), n_i, ex_out_.data());
  at = 0;
  for (int r = r0; r < r1; ++r) {
    if (r == skip) continue;
    const int64_t n = count_recv_[r * n_local + i];
    std::copy_n(ex_out_.data() + at * dim, n * dim, recv_.data() + seg[r * n_local + i] * dim);
    at += n;
  }
}

void MoeLayer::route(const MoeLayerWeights& w, const float* xn, const int32_t* ids, int64_t n_tok, int64_t s0,
                     int64_t s1) {
  const MoeConfig& m = c_.moe;
  const int64_t E = m.n_experts, n_s = s1 - s0;
  switch (m.router) {
    case MoeRouterKind::kTopK:
      logits_.resize(std::max<int64_t>(n_s, 1) * E);
      if (n_s > 0) k::matmul(pool_, w.router, xn + s0 * c_.dim, n_s, logits_.data());
      moe_route_topk(logits_.data(), n_s, E, m.top_k, m.normalize_gates, routing_);
      break;
    case MoeRouterKind::kHash:
      moe_route_hash(ids + s0, n_s, E, m.top_k, routing_);
      break;
    case MoeRouterKind::kBalanced: {
      // The balanced assignment is a function of the whole step: every rank routes all
      // T tokens (the same inputs, so the same result) and keeps its share.
      logits_.resize(n_tok * E);
      k::matmul(pool_, w.router, xn, n_tok, logits_.data());
      Routing all;
      moe_route_balanced(logits_.data(), n_tok, E, m.sinkhorn_iters, m.normalize_gates, all);
      routing_.resize(n_s, 1);
      std::copy_n(all.expert.begin() + s0, n_s, routing_.expert.begin());
      std::copy_n(all.gate.begin() + s0, n_s, routing_.gate.begin());
      break;
    }
  }
}

void MoeLayer::forward(const MoeLayerWeights& w, const float* xn, const int32_t* ids, int64_t n_tok, float* out,
                       MoeLayerStats& st) {
  const int64_t dim = c_.dim, E = c_.moe.n_experts, kk = c_.moe.top_k, n_local = par_.n_local;
  const int64_t chunk = (n_tok + tp_size_ - 1) / tp_size_;
  const int64_t s0 = std::min(n_tok, tp_rank_ * chunk), s1 = std::min(n_tok, s0 + chunk), n_s = s1 - s0;
  if (st.tokens_per_expert.empty()) st.tokens_per_expert.assign(static_cast<size_t>(E), 0);
  ++st.steps;

  // 1. Router.
  auto t0 = std::chrono::steady_clock::now();
  route(w, xn, ids, n_tok, s0, s1);
  const int64_t n_pairs = n_s * routing_.k;
  st.router_s += seconds_since(t0);

  // 2. Dispatch: rows grouped by expert (so by destination: experts are contiguous per
  // EP rank), counting sort over the share's (token, slot) pairs.
  t0 = std::chrono::steady_clock::now();
  count_send_.assign(static_cast<size_t>(E), 0);
  for (const int32_t e : routing_.expert) ++count_send_[e];
  for (int64_t e = 0; e < E; ++e) st.tokens_per_expert[e] += count_send_[e];
  st.tokens += n_s;
  std::vector<int64_t> next(static_cast<size_t>(E), 0);
  for (int64_t e = 1; e < E; ++e) next[e] = next[e - 1] + count_send_[e - 1];
  if (static_cast<int64_t>(send_.size()) < n_pairs * dim) send_.resize(n_pairs * dim);
  row_of_slot_.resize(static_cast<size_t>(n_pairs));
  for (int64_t p = 0; p < n_pairs; ++p) {
    const int64_t row = next[routing_.expert[p]]++;
    row_of_slot_[p] = row;
    std::memcpy(send_.data() + row * dim, xn + (s0 + p / routing_.k) * dim, static_cast<size_t>(dim) * sizeof(float));
  }
  std::vector<size_t> send_rows(static_cast<size_t>(ep_size_), 0), send_off(static_cast<size_t>(ep_size_), 0);
  for (int64_t e = 0; e < E; ++e) send_rows[e / n_local] += static_cast<size_t>(count_send_[e]);
  for (int r = 1; r < ep_size_; ++r) send_off[r] = send_off[r - 1] + send_rows[r - 1];
  std::vector<size_t> recv_rows(static_cast<size_t>(ep_size_), 0), recv_off(static_cast<size_t>(ep_size_), 0);
  int64_t n_recv = 0;
  std::vector<std::unique_ptr<Request>> pending;
  if (ep_size_ == 1) {
    count_recv_ = count_send_;
    recv_rows[0] = static_cast<size_t>(n_pairs);
    n_recv = n_pairs;
    if (static_cast<int64_t>(recv_.size()) < n_recv * dim) recv_.resize(n_recv * dim);
    std::copy_n(send_.data(), n_recv * dim, recv_.data());
  } else {
    // Per-expert counts first (each peer gets the counts of its n_local experts), then
    // the rows themselves.
    count_recv_.assign(static_cast<size_t>(ep_size_ * n_local), 0);
    std::vector<size_t> cnt(static_cast<size_t>(ep_size_), static_cast<size_t>(n_local)), off(static_cast<size_t>(ep_size_));
    for (int r = 0; r < ep_size_; ++r) off[r] = static_cast<size_t>(r * n_local);
    par_.ep->alltoallv(count_send_.data(), cnt, off, count_recv_.data(), cnt, off, CommType::kI64);
    for (int r = 0; r < ep_size_; ++r) {
      for (int64_t i = 0; i < n_local; ++i) recv_rows[r] += static_cast<size_t>(count_recv_[r * n_local + i]);
      if (r > 0) recv_off[r] = recv_off[r - 1] + recv_rows[r - 1];
    }
    n_recv = static_cast<int64_t>(recv_off[ep_size_ - 1] + recv_rows[ep_size_ - 1]);
    if (static_cast<int64_t>(recv_.size()) < n_recv * dim) recv_.resize(std::max<int64_t>(n_recv, 1) * dim);
    const size_t d = static_cast<size_t>(dim);
    if (par_.overlap) {
      // Both sides know every count, so both skip the empty messages alike.
      for (int r = 0; r < ep_size_; ++r)
        if (r != ep_rank_ && recv_rows[r] > 0)
          pending.push_back(par_.ep->irecv(recv_.data() + recv_off[r] * d, recv_rows[r] * d, CommType::kF32, r,
                                           MpiTag::kExpertDispatch));
      for (int r = 0; r < ep_size_; ++r)
        if (r != ep_rank_ && send_rows[r] > 0)
          pending.push_back(par_.ep->isend(send_.data() + send_off[r] * d, send_rows[r] * d, CommType::kF32, r,
                                           MpiTag::kExpertDispatch));
      std::copy_n(send_.data() + send_off[ep_rank_] * d, send_rows[ep_rank_] * d, recv_.data() + recv_off[ep_rank_] * d);
    } else {
      std::vector<size_t> sc(send_rows), so(send_off), rc(recv_rows), ro(recv_off);
      for (auto* v : {&sc, &so, &rc, &ro})
        for (size_t& x : *v) x *= d;
      par_.ep->alltoallv(send_.data(), sc, so, recv_.data(), rc, ro, CommType::kF32);
    }
    for (int r = 0; r < ep_size_; ++r)
      if (r != ep_rank_) st.alltoall_bytes += send_rows[r] * d * sizeof(float);
  }
  st.dispatch_s += seconds_since(t0);

  // 3. Compute: per local expert, its rows from every source gathered into one batch,
  // the FFN run once, the outputs written back over the inputs (same width: dim).
  // With requests in flight: this rank's own rows and the shared expert first, polling
  // the requests between experts (MPI progresses them inside the calls), then the rest.
  t0 = std::chrono::steady_clock::now();
  std::vector<int64_t> seg(static_cast<size_t>(ep_size_ * n_local));  // first row of (source, expert)
  for (int r = 0; r < ep_size_; ++r) {
    int64_t row = static_cast<int64_t>(recv_off[r]);
    for (int64_t i = 0; i < n_local; ++i) {
      seg[r * n_local + i] = row;
      row += count_recv_[r * n_local + i];
    }
  }
  if (w.shared.present() && n_s > 0) {
    if (static_cast<int64_t>(shared_y_.size()) < n_s * dim) shared_y_.resize(n_s * dim);
    expert_ffn(w.shared, xn + s0 * dim, n_s, shared_y_.data());
  }
  if (pending.empty()) {
    for (int64_t i = 0; i < n_local; ++i) run_expert(w, i, -1, -1, seg);
  } else {
    for (int64_t i = 0; i < n_local; ++i) {
      run_expert(w, i, ep_rank_, -1, seg);
      for (auto& q : pending) q->test();
    }
    const auto tw = std::chrono::steady_clock::now();
    for (auto& q : pending) q->wait();
    const double waited = seconds_since(tw);
    st.dispatch_s += waited;
    st.compute_s -= waited;
    for (int64_t i = 0; i < n_local; ++i) run_expert(w, i, -1, ep_rank_, seg);
  }
  st.compute_s += seconds_since(t0);

  // 4. Combine: outputs back to their senders (the reverse all-to-all), the gated sum
  // in slot order, the shared expert, then the shares gathered over the TP group.
  t0 = std::chrono::steady_clock::now();
  if (ep_size_ == 1) {
    std::copy_n(recv_.data(), n_pairs * dim, send_.data());
  } else {
    std::vector<size_t> sc(send_rows), so(send_off), rc(recv_rows), ro(recv_off);
    for (auto* v : {&sc, &so, &rc, &ro})
      for (size_t& x : *v) x *= static_cast<size_t>(dim);
    par_.ep->alltoallv(recv_.data(), rc, ro, send_.data(), sc, so, CommType::kF32);
    for (int r = 0; r < ep_size_; ++r)
      if (r != ep_rank_) st.alltoall_bytes += recv_rows[r] * static_cast<size_t>(dim) * sizeof(float);
  }
  float* dst = out + s0 * dim;
  if (tp_size_ > 1) {
    share_out_.assign(static_cast<size_t>(chunk * dim), 0.0f);
    dst = share_out_.data();
  }
  for (int64_t t = 0; t < n_s; ++t) {
    float* y = dst + t * dim;
    for (int64_t j = 0; j < kk; ++j) {
      const int64_t p = t * kk + j;
      const float g = routing_.gate[p];
      const float* v = send_.data() + row_of_slot_[p] * dim;
      if (j == 0) {
        for (int64_t d = 0; d < dim; ++d) y[d] = g * v[d];
      } else {
        for (int64_t d = 0; d < dim; ++d) y[d] += g * v[d];
      }
    }
  }
  if (w.shared.present() && n_s > 0) k::add_inplace(dst, shared_y_.data(), n_s * dim);
  if (tp_size_ > 1) {
    gathered_.resize(static_cast<size_t>(tp_size_ * chunk * dim));
    par_.tp->allgather(share_out_.data(), gathered_.data(), static_cast<size_t>(chunk * dim), CommType::kF32);
    std::copy_n(gathered_.data(), n_tok * dim, out);
  }
  st.combine_s += seconds_since(t0);
}

}  // namespace tessera
