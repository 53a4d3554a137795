// Weights of one rank's shard of a RecurrentGemma model: views into the mapped
// checkpoint for the matrices, small f32 copies for vectors (norm scales with the
// "1 +" folded in, biases, conv taps, the RG-LRU's gates transposed to W [out][in]).
// "local" sizes are this rank's tensor-parallel shard: lru_local channels (whole
// gate blocks = whole heads), q_local = n_q_heads * head_dim, ffn_local MLP units.
#pragma once

#include <vector>

#include "kernels/ops.h"
#include "model/recurrent_gemma_config.h"

namespace tessera {

struct RgRecurrentWeights {
  kernels::WeightMatrix linear_x;   // [lru_local][dim]   x branch (column-parallel)
  kernels::WeightMatrix linear_y;   // [lru_local][dim]   GeLU branch
  std::vector<float> linear_x_b;    // [lru_local]
  std::vector<float> linear_y_b;    // [lru_local]
  std::vector<float> conv_w;        // [lru_local][conv_width] (HF Conv1d [L][1][K])
  std::vector<float> conv_b;        // [lru_local]
  std::vector<float> input_gate_t;  // [heads_local][block][block]: W[h]^T, y = W[h]^T x per head
  std::vector<float> input_gate_b;  // [lru_local]
  std::vector<float> a_gate_t;      // [heads_local][block][block]
  std::vector<float> a_gate_b;      // [lru_local]
  std::vector<float> softplus_a;    // [lru_local] softplus(recurrent_param)
  kernels::WeightMatrix linear_out; // [dim][lru_local]   (row-parallel)
  std::vector<float> linear_out_b;  // [dim]  added once, after the TP all-reduce
};

struct RgAttentionWeights {
  kernels::WeightMatrix wq;  // [q_local][dim]
  kernels::WeightMatrix wk;  // [head_dim][dim] the single KV head (replicated over TP)
  kernels::WeightMatrix wv;  // [head_dim][dim]
  kernels::WeightMatrix wo;  // [dim][q_local]
  std::vector<float> wo_b;   // [dim]
};

struct RgLayerWeights {
  TemporalBlock kind = TemporalBlock::kRecurrent;
  std::vector<float> temporal_norm;  // [dim] 1 + scale
  RgRecurrentWeights rec;            // kind == kRecurrent
  RgAttentionWeights att;            // kind == kAttention
  std::vector<float> channel_norm;   // [dim] 1 + scale
  kernels::WeightMatrix gate;        // [ffn_local][dim]
  kernels::WeightMatrix up;          // [ffn_local][dim]
  std::vector<float> gate_b, up_b;   // [ffn_local]
  kernels::WeightMatrix down;        // [dim][ffn_local]
  std::vector<float> down_b;         // [dim]
};

struct RecurrentGemmaWeights {
  kernels::WeightMatrix embed;     // [vocab_local][dim] (first stage; also the head when tied)
  std::vector<RgLayerWeights> layers;
  std::vector<float> final_norm;   // [dim] 1 + scale
  kernels::WeightMatrix head;      // [vocab_local][dim] (last stage) == embed rows
};

}  // namespace tessera
