#include "model/cp_attention.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "kernels/ops.h"

namespace tessera {

namespace k = kernels;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr float kNoKv = -std::numeric_limits<float>::infinity();

// Causally visible (query, KV) pairs for queries at positions [qa, qa + nq) over KV at
// [ka, ka + nk): what the kernel has to compute, counted for the balance test.
int64_t visible_pairs(int64_t qa, int64_t nq, int64_t ka, int64_t nk) {
  int64_t pairs = 0;
  for (int64_t t = 0; t < nq; ++t) pairs += std::clamp<int64_t>(qa + t - ka + 1, 0, nk);
  return pairs;
}

template <typename T>
T* grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

CpAttention::CpAttention(Communicator& cp, k::ThreadPool& pool, const CpAttentionShape& shape)
    : cp_(cp), pool_(pool), shape_(shape) {
  width_ = shape.n_heads * shape.head_dim;
  kv_width_ = shape.n_kv_heads * shape.head_dim;
}

void CpAttention::merge(float* out_a, float* lse_a, const float* out_b, const float* lse_b, int64_t n_rows) const {
  // Rows of the kernel's output are (token, head) pairs of head_dim floats, each with its LSE.
  k::merge_attention(out_a, lse_a, out_b, lse_b, n_rows * shape_.n_heads, shape_.head_dim);
}

void CpAttention::attend_shard(int64_t layer, const ForwardSequence& s, KvCache& cache, const float* q, int64_t n_q,
                               int64_t q_slot0, int64_t n_kv, float* out, float* lse) {
  if (n_q == 0) return;
  if (n_kv == 0) {
    std::fill_n(out, n_q * width_, 0.0f);
    std::fill_n(lse, n_q * shape_.n_heads, kNoKv);
    return;
  }
  const int64_t bs = cache.shape().block_size;
  const int64_t n_blocks = (n_kv + bs - 1) / bs;
  TESSERA_REQUIRE(static_cast<int64_t>(s.block_table.size()) >= n_blocks, ErrorKind::kInternal,
                  "context parallel: block table of ", s.block_table.size(), " blocks does not cover the ", n_kv,
                  " KV entries of this rank's shard");
  k_blocks_.resize(n_blocks);
  v_blocks_.resize(n_blocks);
  for (int64_t b = 0; b < n_blocks; ++b) {
    k_blocks_[b] = cache.k_block(layer, s.block_table[b]);
    v_blocks_[b] = cache.v_block(layer, s.block_table[b]);
  }
  k::AttentionArgs a;
  a.q = q;
  a.n_q = n_q;
  a.n_heads = shape_.n_heads;
  a.n_kv_heads = shape_.n_kv_heads;
  a.head_dim = shape_.head_dim;
  a.k_blocks = k_blocks_.data();
  a.v_blocks = v_blocks_.data();
  a.block_size = bs;
  a.n_kv = n_kv;
  // Slots, not positions: the shard is dense and every slot the mask must hide comes
  // after the queries' own (the new KV of a replicated slice), see the header.
  a.q_pos0 = q_slot0;
  a.kv_pos0 = 0;
  a.causal = true;
  a.scale = shape_.scale;
  a.out = out;
  a.lse = lse;
  const auto t0 = Clock::now();
  k::attention(pool_, a);
  stats_.shard_seconds += since(t0);
  stats_.visible_pairs += visible_pairs(q_slot0, n_q, 0, n_kv);
}

void CpAttention::attend(int64_t layer, const ForwardSequence& s, const CpPlacement& p, const float* q,
                         const float* kk, const float* vv, KvCache& cache, float* out) {
  const int r = cp_.rank();
  const int64_t held = s.cp_kv_lens[r];
  const int64_t stored = p.stored(r);
  // Store this rank's new KV at its next local slots (replicated: the owner stores all n).
  const int64_t bs = cache.shape().block_size;
  TESSERA_REQUIRE(static_cast<int64_t>(s.block_table.size()) * bs >= held + stored, ErrorKind::kInternal,
                  "context parallel: block table of ", s.block_table.size(), " blocks cannot hold ", held + stored,
                  " KV entries on cp rank ", r);
  for (int64_t i = 0; i < stored; ++i) {
    std::copy_n(kk + i * kv_width_, kv_width_, cache.k_at(layer, s.block_table.data(), held + i));
    std::copy_n(vv + i * kv_width_, kv_width_, cache.v_at(layer, s.block_table.data(), held + i));
  }
  if (p.replicated) {
    attend_replicated(layer, s, p, q, cache, out);
  } else {
    attend_split(layer, s, p, q, cache, out);
  }
}

void CpAttention::attend_replicated(int64_t layer, const ForwardSequence& s, const CpPlacement& p, const float* q,
                                    KvCache& cache, float* out) {
  const int r = cp_.rank(), c = cp_.size();
  const int64_t n = p.n, h = shape_.n_heads, row = width_ + h;  // packed row: out then lse
  const int64_t held = s.cp_kv_lens[r];
  // Query t (position pos0 + t) sees the whole shard plus, on the owner, new slots <= held + t.
  float* part = grow(part_out_, n * width_);
  float* plse = grow(part_lse_, n * h);
  attend_shard(layer, s, cache, q, n, held, held + p.stored(r), part, plse);
  float* pack = grow(pack_, n * row);
  for (int64_t t = 0; t < n; ++t) {
    std::copy_n(part + t * width_, width_, pack + t * row);
    std::copy_n(plse + t * h, h, pack + t * row + width_);
  }
  float* all = grow(pack_all_, c * n * row);
  const auto t0 = Clock::now();
  cp_.allgather(pack, all, static_cast<size_t>(n * row), CommType::kF32);
  stats_.gather_seconds += since(t0);
  // Every rank merges the C partials in rank order: identical outputs everywhere.
  float* lse = grow(acc_lse_, n * h);
  for (int src = 0; src < c; ++src) {
    const float* block = all + src * n * row;
    for (int64_t t = 0; t < n; ++t) {
      std::copy_n(block + t * row, width_, part + t * width_);
      std::copy_n(block + t * row + width_, h, plse + t * h);
    }
    if (src == 0) {
      std::copy_n(part, n * width_, out);
      std::copy_n(plse, n * h, lse);
    } else {
      merge(out, lse, part, plse, n);
    }
  }
}

void CpAttention::attend_split(int64_t layer, const ForwardSequence& s, const CpPlacement& p, const float* q,
                               KvCache& cache, float* out) {
  const int r = cp_.rank(), c = cp_.size();
  const int64_t h = shape_.n_heads, m = p.rows(r);
  int64_t max_m = 0;
  for (int j = 0; j < c; ++j) max_m = std::max(max_m, p.rows(j));
  float* lse = grow(acc_lse_, m * h);
  std::fill_n(out, m * width_, 0.0f);
  std::fill_n(lse, m * h, kNoKv);

  // 1. Earlier chunks (pass-Q): all queries of the chunk over this rank's shard.
  if (s.pos0 > 0) {
    const int64_t held = s.cp_kv_lens[r], row = width_ + h;
    float* qpad = grow(pack_, max_m * row);
    std::fill_n(qpad, max_m * width_, 0.0f);
    std::copy_n(q, m * width_, qpad);
    float* q_all = grow(q_all_, c * max_m * width_);  // [C][max_m][width]
    auto t0 = Clock::now();
    cp_.allgather(qpad, q_all, static_cast<size_t>(max_m * width_), CommType::kF32);
    stats_.gather_seconds += since(t0);
    float* part = grow(part_out_, c * max_m * width_);
    float* plse = grow(part_lse_, c * max_m * h);
    for (int j = 0; j < c; ++j)  // no mask: q_slot0 = held sees every slot
      attend_shard(layer, s, cache, q_all + j * max_m * width_, p.rows(j), held, held,
                   part + j * max_m * width_, plse + j * max_m * h);
    // Pack [C][max_m][width + heads] and send block j to rank j.
    float* send = grow(pack_all_, 2 * c * max_m * row);
    float* recv = send + c * max_m * row;
    for (int j = 0; j < c; ++j)
      for (int64_t t = 0; t < p.rows(j); ++t) {
        std::copy_n(part + (j * max_m + t) * width_, width_, send + (j * max_m + t) * row);
        std::copy_n(plse + (j * max_m + t) * h, h, send + (j * max_m + t) * row + width_);
      }
    std::vector<size_t> counts(c, static_cast<size_t>(max_m * row)), offsets(c);
    for (int j = 0; j < c; ++j) offsets[j] = static_cast<size_t>(j * max_m * row);
    t0 = Clock::now();
    cp_.alltoallv(send, counts, offsets, recv, counts, offsets, CommType::kF32);
    stats_.gather_seconds += since(t0);
    for (int j = 0; j < c; ++j) {
      for (int64_t t = 0; t < m; ++t) {
        std::copy_n(recv + (j * max_m + t) * row, width_, part + t * width_);
        std::copy_n(recv + (j * max_m + t) * row + width_, h, plse + t * h);
      }
      merge(out, lse, part, plse, m);
    }
  }

  // 2. The chunk itself (pass-KV ring). A ring buffer is [K: max_m][V: max_m] rows.
  const int64_t kvw = kv_width_, buf = 2 * max_m * kvw;
  float* cur = grow(ring_a_, buf);
  float* nxt = grow(ring_b_, buf);
  const int64_t held = s.cp_kv_lens[r];
  for (int64_t i = 0; i < m; ++i) {  // this rank's chunk rows, as stored just now
    std::copy_n(cache.k_at(layer, s.block_table.data(), held + i), kvw, cur + i * kvw);
    std::copy_n(cache.v_at(layer, s.block_table.data(), held + i), kvw, cur + (max_m + i) * kvw);
  }
  float* part = grow(part_out_, m * width_);
  float* plse = grow(part_lse_, m * h);
  const int next = (r + 1) % c, prev = (r + c - 1) % c;
  for (int step = 0; step < c; ++step) {
    const int src = (r - step + c) % c;  // whose rows are in hand
    std::unique_ptr<Request> rx, tx;
    if (step + 1 < c) {
      rx = cp_.irecv(nxt, static_cast<size_t>(buf), CommType::kF32, prev, MpiTag::kRingKv);
      tx = cp_.isend(cur, static_cast<size_t>(buf), CommType::kF32, next, MpiTag::kRingKv);
      stats_.ring_bytes += buf * 4;
    }
    const auto t0 = Clock::now();
    int64_t q_row = 0;
    for (const CpSegment& qs : p.blocks[r]) {
      int64_t kv_row = 0;
      for (const CpSegment& ks : p.blocks[src]) {
        const int64_t qa = s.pos0 + qs.offset, ka = s.pos0 + ks.offset;
        // KV after the segment's last query is hidden from all of it: clip it off.
        const int64_t nk = std::min(ks.length, qa + qs.length - ka);
        if (nk > 0) {
          const float* kb = cur + kv_row * kvw;
          const float* vb = cur + (max_m + kv_row) * kvw;
          k::AttentionArgs a;
          a.q = q + q_row * width_;
          a.n_q = qs.length;
          a.n_heads = h;
          a.n_kv_heads = shape_.n_kv_heads;
          a.head_dim = shape_.head_dim;
          a.k_blocks = &kb;
          a.v_blocks = &vb;
          a.block_size = nk;
          a.n_kv = nk;
          a.q_pos0 = qa;
          a.kv_pos0 = ka;
          a.causal = true;
          a.scale = shape_.scale;
          a.out = part;
          a.lse = plse;
          k::attention(pool_, a);
          const int64_t pairs = visible_pairs(qa, qs.length, ka, nk);
          stats_.visible_pairs += pairs;
          stats_.ring_pairs += pairs;
          merge(out + q_row * width_, lse + q_row * h, part, plse, qs.length);
        }
        kv_row += ks.length;
      }
      q_row += qs.length;
    }
    stats_.ring_compute_seconds += since(t0);
    if (rx) {
      const auto t1 = Clock::now();
      rx->wait();
      tx->wait();
      stats_.ring_wait_seconds += since(t1);
      std::swap(cur, nxt);
      ++stats_.ring_steps;
    }
  }
}

}  // namespace tessera
