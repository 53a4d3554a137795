// Hyperparameters of a dense decoder (Llama / Gopher / Chinchilla family), as a plain
// value. Filled from GGUF metadata, Hugging Face config.json or a llama2.c header by
// model/config_loader.cpp; the forward pass reads nothing else.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/ops.h"
#include "model/moe_config.h"

namespace tessera {

enum class FfnKind {
  kSwiGlu,  // down(silu(gate x) * up x)       Llama, Mistral, SmolLM
  kGeGlu,   // down(gelu(gate x) * up x)       Gemma
  kGelu,    // down(gelu(up x))                GPT-style plain FFN
  kSilu,    // down(silu(up x))                plain FFN with SiLU
};

const char* ffn_kind_name(FfnKind kind);

struct ModelConfig {
  std::string architecture;   // "llama", as the checkpoint names it
  int64_t dim = 0;            // d_model
  int64_t n_layers = 0;
  int64_t n_heads = 0;        // query heads
  int64_t n_kv_heads = 0;     // == n_heads: MHA; 1: MQA; otherwise GQA
  int64_t head_dim = 0;       // usually dim / n_heads
  int64_t ffn_dim = 0;        // hidden units of the FFN
  int64_t vocab_size = 0;
  int64_t max_seq_len = 0;    // trained context length
  float norm_eps = 1e-5f;     // RMSNorm epsilon
  float rope_theta = 10000.0f;
  int64_t rope_dim = 0;       // rotated dims per head (partial RoPE when < head_dim)
  kernels::RopeLayout rope_layout = kernels::RopeLayout::kInterleaved;
  FfnKind ffn = FfnKind::kSwiGlu;
  bool tied_embeddings = false;  // LM head shares token_embd
  float embedding_scale = 1.0f;  // Gemma multiplies embeddings by sqrt(dim)
  MoeConfig moe;                 // mixture-of-experts FFN when moe.n_experts > 0 (docs/MOE.md)
  // A family with a fixed-size per-sequence state (Griffin / RecurrentGemma) instead of a
  // KV cache that grows with the context: the worker keeps no paged KV for it, and each
  // sequence needs a state slot (SequenceStep::state_slot). docs/RECURRENT_GEMMA.md.
  bool fixed_state = false;

  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // Throws tessera::Error naming `source` and the inconsistent field.
  void validate(const std::string& source) const;
  std::string summary() const;
};

}  // namespace tessera
