// The mixture-of-experts FFN of one layer on one rank, with expert parallelism
// (docs/MOE.md, "Expert parallelism").
//
// Every rank of a TP group holds the same T tokens (the residual stream is replicated
// after the TP all-reduce). The layer splits them into tp shares of ceil(T / tp) rows;
// the rank with TP rank s routes share s only, so each token is routed and each
// (token, expert) pair computed exactly once per stage:
//   1. router: logits [T_s][E] of its share (all T tokens for S-BASE, whose assignment
//      is a function of the whole batch) and the k (expert, gate) pairs per token;
//   2. dispatch: the share's rows, grouped by expert, to the EP ranks owning those
//      experts (alltoallv over the EP group: per-expert row counts, then the rows);
//   3. compute: each local expert's gated FFN over all rows it received, as one batch
//      (with `overlap`, the rows this rank sent itself and the shared expert run while
//      the other ranks' rows are in flight, then the received rows);
//   4. combine: the outputs back to their senders (alltoallv), y = sum_j gate_j *
//      expert_j(x) (+ the shared expert) in slot order, then the shares all-gathered
//      over the TP group so every rank holds all T rows again.
// No capacity limit: buffers grow to whatever the routing sends, nothing is dropped.
#pragma once

#include <cstdint>
#include <vector>

#include "collectives/communicator.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "model/moe_router.h"
#include "model/moe_weights.h"

namespace tessera {

// Accumulated over the steps of one layer on one rank (bench, /metrics).
struct MoeLayerStats {
  std::vector<int64_t> tokens_per_expert;  // [E] (token, expert) pairs this rank routed
  int64_t tokens = 0;                      // tokens this rank routed
  int64_t steps = 0;
  double router_s = 0, dispatch_s = 0, compute_s = 0, combine_s = 0;
  uint64_t alltoall_bytes = 0;             // payload bytes this rank sent to other EP ranks
  void add(const MoeLayerStats& o);
  // max / mean of tokens_per_expert (1 = perfectly balanced; 0 when nothing routed).
  double imbalance() const;
};

struct MoeParallel {
  Communicator* ep = nullptr;  // null: one EP rank (all experts here)
  Communicator* tp = nullptr;  // null: one share (all tokens here)
  int64_t expert_begin = 0;    // this rank's experts [expert_begin, expert_begin + n_local)
  int64_t n_local = 0;
  // Post the row exchange as non-blocking sends / receives and run the rows this rank
  // sent itself and the shared expert while they are in flight; false: one blocking
  // alltoallv, then all compute (the two agree to rounding; moe_bench compares them).
  bool overlap = true;
};

class MoeLayer {
 public:
  // `pool` and the communicators must outlive the layer.
  MoeLayer(const ModelConfig& config, MoeParallel parallel, kernels::ThreadPool& pool);

  // out [T][dim] = MoE FFN of xn [T][dim] (normalised input); ids [T] are the token ids
  // (hash router). Identical on every rank of the TP group.
  void forward(const MoeLayerWeights& w, const float* xn, const int32_t* ids, int64_t n_tok, float* out,
               MoeLayerStats& stats);

 private:
  void route(const MoeLayerWeights& w, const float* xn, const int32_t* ids, int64_t n_tok, int64_t s0, int64_t s1);
  void expert_ffn(const MoeExpertWeights& e, const float* x, int64_t n, float* y);
  // Runs local expert i in place over its rows in recv_ from source `only` (>= 0) or
  // from every source but `skip`, as one batch; seg[r * n_local + i] = first row.
  void run_expert(const MoeLayerWeights& w, int64_t i, int only, int skip, const std::vector<int64_t>& seg);

  ModelConfig c_;
  MoeParallel par_;
  kernels::ThreadPool& pool_;
  int ep_size_ = 1, ep_rank_ = 0, tp_size_ = 1, tp_rank_ = 0;

  // Scratch of one forward, grown as needed (never shrunk).
  std::vector<float> logits_;          // [rows routed][E]
  Routing routing_;                    // of the rows routed
  std::vector<int64_t> row_of_slot_;   // [T_s * k]: send row of (token - s0) * k + slot
  std::vector<float> send_, recv_;     // rows [n][dim], grouped by destination then expert
  std::vector<int64_t> count_send_;    // [E]: rows this rank sends to each expert
  std::vector<int64_t> count_recv_;    // [ep][n_local]: rows each source sends each local expert
  std::vector<float> ex_in_, ex_out_;  // one expert's rows [n][dim] and outputs
  std::vector<float> gate_, up_;       // [n][ffn]
  std::vector<float> shared_y_;        // [T_s][dim] shared expert output
  std::vector<float> share_out_, gathered_;  // [chunk][dim], [tp * chunk][dim]
};

}  // namespace tessera
