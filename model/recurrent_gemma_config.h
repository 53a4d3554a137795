// Hyperparameters of Griffin / RecurrentGemma (Hugging Face model_type
// "recurrent_gemma"), read from config.json. The common fields go into a ModelConfig
// (what the coordinator, sampler and shard planner read); the rest stay here.
// docs/RECURRENT_GEMMA.md.
#pragma once

#include <string>
#include <vector>

#include "common/json.h"
#include "model/config.h"

namespace tessera {

enum class TemporalBlock { kRecurrent, kAttention };

struct RecurrentGemmaConfig {
  ModelConfig base;           // dim, layers, heads (n_kv_heads 1), head_dim, ffn_dim = MLP
                              // width per branch (intermediate_size / 2), vocab, partial RoPE
  int64_t lru_width = 0;      // channels of the recurrent branch (RG-LRU, conv)
  int64_t window = 0;         // local attention: keys at positions (p - window, p]
  int64_t conv_width = 0;     // temporal Conv1D taps
  float logits_soft_cap = 0;  // logits = cap * tanh(logits / cap); 0 = none
  std::vector<TemporalBlock> blocks;  // per layer: the block_types pattern repeated

  int64_t lru_block() const { return lru_width / base.n_heads; }  // RG-LRU gate block width
  void validate(const std::string& source) const;
};

// Positions a RecurrentGemma model accepts: the state does not grow, so the limit is
// only int32 positions and RoPE's f32 angles; 16M tokens.
constexpr int64_t kRecurrentGemmaMaxPositions = int64_t{1} << 24;

bool is_recurrent_gemma_json(const Json& config);
// Throws tessera::Error naming `source` and the missing or inconsistent field.
RecurrentGemmaConfig recurrent_gemma_config_from_json(const Json& config, const std::string& source);

}  // namespace tessera
