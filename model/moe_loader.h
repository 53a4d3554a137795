// Binds the MoE tensors of one layer to MoeLayerWeights views (docs/MOE.md,
// "Checkpoints"). Names:
//   GGUF (llama.cpp):  blk.N.ffn_gate_inp.weight [E][dim] (router),
//                      blk.N.ffn_{gate,up}_exps.weight [E][ffn][dim],
//                      blk.N.ffn_down_exps.weight [E][dim][ffn],
//                      blk.N.ffn_{gate,up,down}_shexp.weight (shared expert, optional)
//   Hugging Face Mixtral (what transformers' save_pretrained writes):
//                      model.layers.N.block_sparse_moe.gate.weight [E][dim],
//                      ...block_sparse_moe.experts.M.w1.weight [ffn][dim] (gate),
//                      w3 (up) [ffn][dim], w2 (down) [dim][ffn]
// Only this rank's experts are mapped (one contiguous row range of each 3-D GGUF
// tensor; only their own tensors for Mixtral), so bytes_touched counts E / ep of them.
#pragma once

#include <cstdint>

#include "checkpoint/checkpoint.h"
#include "model/config.h"
#include "model/moe_weights.h"
#include "model/tensor_names.h"
#include "sharding/plan.h"

namespace tessera {

// Throws tessera::Error naming the file and tensor when a tensor is missing or its
// shape disagrees with the metadata (expert_count, the expert FFN width, dim).
// `bytes` accumulates the bytes bound.
MoeLayerWeights bind_moe_layer(const checkpoint::Checkpoint& ck, TensorNaming naming, const ModelConfig& c,
                               const ShardPlan& p, int64_t layer, kernels::ActRounding rounding, uint64_t& bytes);

}  // namespace tessera
