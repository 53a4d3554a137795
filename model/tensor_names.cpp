#include "model/tensor_names.h"

namespace tessera {

std::string tensor_name(TensorNaming naming, TensorRole role, int64_t layer) {
  const std::string l = std::to_string(layer);
  if (naming == TensorNaming::kGguf) {
    const std::string b = "blk." + l + ".";
    switch (role) {
      case TensorRole::kTokenEmbd: return "token_embd.weight";
      case TensorRole::kOutputNorm: return "output_norm.weight";
      case TensorRole::kOutput: return "output.weight";
      case TensorRole::kAttnNorm: return b + "attn_norm.weight";
      case TensorRole::kAttnQ: return b + "attn_q.weight";
      case TensorRole::kAttnK: return b + "attn_k.weight";
      case TensorRole::kAttnV: return b + "attn_v.weight";
      case TensorRole::kAttnOut: return b + "attn_output.weight";
      case TensorRole::kFfnNorm: return b + "ffn_norm.weight";
      case TensorRole::kFfnGate: return b + "ffn_gate.weight";
      case TensorRole::kFfnUp: return b + "ffn_up.weight";
      case TensorRole::kFfnDown: return b + "ffn_down.weight";
    }
  }
  const std::string b = "model.layers." + l + ".";
  switch (role) {
    case TensorRole::kTokenEmbd: return "model.embed_tokens.weight";
    case TensorRole::kOutputNorm: return "model.norm.weight";
    case TensorRole::kOutput: return "lm_head.weight";
    case TensorRole::kAttnNorm: return b + "input_layernorm.weight";
    case TensorRole::kAttnQ: return b + "self_attn.q_proj.weight";
    case TensorRole::kAttnK: return b + "self_attn.k_proj.weight";
    case TensorRole::kAttnV: return b + "self_attn.v_proj.weight";
    case TensorRole::kAttnOut: return b + "self_attn.o_proj.weight";
    case TensorRole::kFfnNorm: return b + "post_attention_layernorm.weight";
    case TensorRole::kFfnGate: return b + "mlp.gate_proj.weight";
    case TensorRole::kFfnUp: return b + "mlp.up_proj.weight";
    case TensorRole::kFfnDown: return b + "mlp.down_proj.weight";
  }
  return "";
}

}  // namespace tessera
