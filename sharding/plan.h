// The shard plan: which part of the model one rank owns, derived from the model config
// and the parallel config alone (pure arithmetic, so the coordinator, every worker and
// the planner agree without talking). DESIGN.md, "Sharding".
//
// Tensor parallel (Megatron-style): column-parallel Q/K/V and FFN gate/up (each rank
// owns a contiguous range of output rows), row-parallel attention output and FFN down
// (a range of input columns, partial sums all-reduced), vocab-parallel embedding and
// LM head (a contiguous vocabulary range per rank). Query heads split evenly; KV heads
// split when there are at least as many as TP ranks, otherwise each rank holds the one
// KV head its query heads use (replicated across tp / n_kv_heads ranks).
// Pipeline parallel: contiguous layer ranges, the first (n_layers % pp) stages one
// layer longer.
// Expert parallel (MoE models): EP rank r owns experts [r * E/ep, (r + 1) * E/ep),
// whole (an expert's FFN is not split over TP); the dense-FFN checks do not apply.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace tessera {

struct ShardSpec {
  int tp = 1, pp = 1;          // group sizes
  int tp_rank = 0, pp_rank = 0;
  int ep = 1, ep_rank = 0;     // expert parallelism over the stage's ranks (MoE models)
};

struct ShardPlan {
  ShardSpec spec;
  int64_t layer_begin = 0, layer_end = 0;   // this stage's layers [begin, end)
  int64_t q_head_begin = 0, n_q_heads = 0;  // query heads owned
  int64_t kv_head_begin = 0, n_kv_heads = 0;
  int64_t ffn_begin = 0, ffn_size = 0;      // FFN hidden units owned
  int64_t vocab_begin = 0, vocab_size = 0;  // vocabulary rows owned (embedding, LM head)
  int64_t expert_begin = 0, n_experts = 0;  // MoE: whole experts owned (E / ep per EP rank)

  bool first_stage() const { return spec.pp_rank == 0; }
  bool last_stage() const { return spec.pp_rank == spec.pp - 1; }
  int64_t n_layers() const { return layer_end - layer_begin; }
  std::string describe() const;
};

// Throws tessera::Error(kInvalidInput) saying why the split does not fit the model
// (e.g. "32 query heads do not split over tp = 3"), before anything is loaded.
// `weight_block` is the quantisation block of the row-parallel weights (1 for
// F32/F16/BF16, 32 for Q8_0/Q4_0/Q4_1): their column slices must fall on blocks.
void validate_split(const ModelConfig& config, int tp, int pp, int64_t weight_block = 1);

ShardPlan make_shard_plan(const ModelConfig& config, const ShardSpec& spec, int64_t weight_block = 1);

// The whole model on one rank.
ShardPlan full_plan(const ModelConfig& config);

}  // namespace tessera
