// Attention of one layer under context parallelism (docs/CONTEXT_PARALLEL.md): this
// rank holds some of a slice's new tokens (model/cp_layout.h) and a shard of the
// sequence's earlier KV; the exact causal attention of its rows over the whole
// sequence is assembled from partial results merged by their log-sum-exp.
//
// split slices (prefill chunks), ring attention over the chunk:
//   the K/V rows of the chunk travel around the CP ring (pass-KV): at step s rank r
//   holds rank (r - s)'s rows, sends them on to r + 1 and receives the next from
//   r - 1 with non-blocking send/recv while the blocked attention kernel runs on the
//   rows in hand (causal mask from the zigzag blocks' positions).
//   KV from earlier chunks stays where it is (pass-Q): the chunk's queries are
//   all-gathered, each rank attends all of them over its own shard (every earlier
//   position precedes the chunk, so no mask), and an all-to-all returns each rank's
//   partials to the owners of the queries.
// replicated slices (decode): every rank has the queries; each attends them over its
//   shard (plus the new KV it stored), the partials are all-gathered and every rank
//   merges them in rank order, so all ranks hold the same output.
#pragma once

#include <cstdint>
#include <vector>

#include "collectives/communicator.h"
#include "kernels/thread_pool.h"
#include "model/cp_layout.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace tessera {

// What this rank did, cumulative (tests and the benchmark read it).
struct CpAttentionStats {
  int64_t visible_pairs = 0;      // (query token, KV token) pairs attended, per query head group
  int64_t ring_pairs = 0;         // of which on the ring (the chunk's own KV)
  int64_t ring_steps = 0;         // KV blocks received from the ring
  int64_t ring_bytes = 0;         // bytes sent around the ring
  double ring_compute_seconds = 0;  // attention on the blocks in hand while transfers ran
  double ring_wait_seconds = 0;     // blocked waiting for a transfer after that compute
  double shard_seconds = 0;         // attention over this rank's stored shard (earlier chunks, decode)
  double gather_seconds = 0;        // query all-gather, partial all-to-all / all-gather
};

struct CpAttentionShape {
  int64_t n_heads = 0;     // query heads of this rank (its TP shard)
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  float scale = 0;
};

class CpAttention {
 public:
  // `cp` and `pool` must outlive this object.
  CpAttention(Communicator& cp, kernels::ThreadPool& pool, const CpAttentionShape& shape);

  // One sequence slice of one layer. q [rows][n_heads * head_dim], k and v
  // [rows][n_kv_heads * head_dim] are this rank's rows of the slice (RoPE applied), in
  // the order of model/cp_layout.h; stores the KV this rank keeps in `cache` and writes
  // the attention output of its rows to out [rows][n_heads * head_dim].
  void attend(int64_t layer, const ForwardSequence& s, const CpPlacement& p, const float* q, const float* k,
              const float* v, KvCache& cache, float* out);

  const CpAttentionStats& stats() const { return stats_; }
  int rank() const { return cp_.rank(); }
  int size() const { return cp_.size(); }

 private:
  // Attention of n_q queries over local KV slots [0, n_kv) of the sequence; query t sees
  // slots <= q_slot0 + t (q_slot0 >= n_kv: every slot). Writes out [n_q][width], lse [n_q][heads].
  void attend_shard(int64_t layer, const ForwardSequence& s, KvCache& cache, const float* q, int64_t n_q,
                    int64_t q_slot0, int64_t n_kv, float* out, float* lse);
  void attend_replicated(int64_t layer, const ForwardSequence& s, const CpPlacement& p, const float* q,
                         KvCache& cache, float* out);
  void attend_split(int64_t layer, const ForwardSequence& s, const CpPlacement& p, const float* q, KvCache& cache,
                    float* out);
  // Merges rows (out_b, lse_b) into the accumulator (out_a, lse_a): n_rows query tokens.
  void merge(float* out_a, float* lse_a, const float* out_b, const float* lse_b, int64_t n_rows) const;

  Communicator& cp_;
  kernels::ThreadPool& pool_;
  CpAttentionShape shape_;
  int64_t width_ = 0;     // n_heads * head_dim
  int64_t kv_width_ = 0;  // n_kv_heads * head_dim
  CpAttentionStats stats_;
  // Workspaces, grown to the largest slice seen (bounded by the prefill chunk).
  std::vector<float> acc_lse_, part_out_, part_lse_, q_all_, pack_, pack_all_, ring_a_, ring_b_;
  std::vector<const float*> k_blocks_, v_blocks_;
};

}  // namespace tessera
