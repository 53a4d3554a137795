// Weights of the dense decoder family (Llama / Gopher / Chinchilla), as views into the
// mapped checkpoint (matrices) plus small f32 copies (norm vectors). Shapes follow
// y = W x: W [out][in].
#pragma once

#include <vector>

#include "kernels/ops.h"
#include "model/moe_weights.h"

namespace tessera {

struct LlamaLayerWeights {
  std::vector<float> attn_norm;  // [dim]
  kernels::WeightMatrix wq;      // [n_heads * head_dim][dim]
  kernels::WeightMatrix wk;      // [n_kv_heads * head_dim][dim]
  kernels::WeightMatrix wv;      // [n_kv_heads * head_dim][dim]
  kernels::WeightMatrix wo;      // [dim][n_heads * head_dim]
  std::vector<float> ffn_norm;   // [dim]
  kernels::WeightMatrix w_gate;  // [ffn_dim][dim]   (absent for plain FFNs)
  kernels::WeightMatrix w_up;    // [ffn_dim][dim]
  kernels::WeightMatrix w_down;  // [dim][ffn_dim]
  MoeLayerWeights moe;           // MoE models: router and this rank's experts (no w_gate/up/down)
};

struct LlamaWeights {
  kernels::WeightMatrix token_embd;  // [vocab][dim]
  std::vector<LlamaLayerWeights> layers;
  std::vector<float> output_norm;    // [dim]
  kernels::WeightMatrix output;      // [vocab][dim] (== token_embd when tied)
};

}  // namespace tessera
