// MoE hyperparameters from a checkpoint's metadata (docs/MOE.md, "Checkpoints").
#pragma once

#include <string>

#include "checkpoint/gguf_reader.h"
#include "common/json.h"
#include "model/moe_config.h"

namespace tessera {

// llama.cpp's keys: <arch>.expert_count, <arch>.expert_used_count,
// <arch>.expert_feed_forward_length (default: feed_forward_length),
// <arch>.expert_shared_feed_forward_length (when blk.0.ffn_up_shexp.weight exists),
// <arch>.expert_weights_norm (default true, as llama.cpp's llama graph). tessera's
// own: <arch>.expert_router ("topk" | "hash" | "sbase", default topk) and
// <arch>.expert_sinkhorn_iterations. Dense (n_experts 0) when expert_count is absent or 0.
MoeConfig moe_config_from_gguf(const checkpoint::GgufReader& g, const std::string& arch);

// transformers' MixtralConfig: num_local_experts, num_experts_per_tok,
// intermediate_size (per expert); Mixtral always renormalises the top-k gates.
MoeConfig moe_config_from_hf_json(const Json& j, const std::string& source);

}  // namespace tessera
