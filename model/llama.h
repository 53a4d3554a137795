// The dense decoder: RMSNorm -> attention (RoPE, GQA/MQA) -> residual -> RMSNorm ->
// gated or plain FFN -> residual; final RMSNorm; LM head (tied or untied).
#pragma once

#include <memory>
#include <vector>

#include "kernels/thread_pool.h"
#include "model/llama_weights.h"
#include "model/model.h"

namespace tessera {

class LlamaModel final : public DecoderModel {
 public:
  // `pool` must outlive the model; the weights' views must stay valid (the checkpoint
  // that backs them is owned by whoever owns the model, see model/loader.h).
  LlamaModel(ModelConfig config, LlamaWeights weights, kernels::ThreadPool& pool);

  const ModelConfig& config() const override { return config_; }
  void forward(std::span<const ForwardSequence> batch, KvCache& cache, float* logits) override;

 private:
  void attention_block(int64_t layer, std::span<const ForwardSequence> batch, KvCache& cache);
  void ffn_block(int64_t layer);
  void ensure_capacity(int64_t n_tokens);

  ModelConfig config_;
  LlamaWeights w_;
  kernels::ThreadPool& pool_;

  // Activations of the current step, T = new tokens in the batch.
  int64_t capacity_ = 0;
  int64_t n_tok_ = 0;           // T of the step in progress
  std::vector<int32_t> pos_;    // [T] absolute positions
  std::vector<float> x_;        // [T][dim] residual stream
  std::vector<float> xn_;       // [T][dim] normalised input of a block
  std::vector<float> q_;        // [T][q_dim]
  std::vector<float> k_;        // [T][kv_dim]
  std::vector<float> v_;        // [T][kv_dim]
  std::vector<float> att_;      // [T][q_dim]
  std::vector<float> proj_;     // [T][dim]
  std::vector<float> gate_;     // [T][ffn_dim]
  std::vector<float> up_;       // [T][ffn_dim]
  std::vector<const float*> k_blocks_, v_blocks_;  // one sequence's block pointers
};

}  // namespace tessera
