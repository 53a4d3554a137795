// Griffin / RecurrentGemma (Hugging Face RecurrentGemmaForCausalLM; docs/RECURRENT_GEMMA.md).
//
// Per layer: x += T(RMSNorm x) where T is the layer's temporal block, then
// x += MLP(RMSNorm x) with MLP = down(gelu_tanh(gate x + b) * (up x + b)) + b.
//   recurrent block: out(RG-LRU(Conv1D(linear_x x)) * gelu_tanh(linear_y x))
//   attention block: local multi-query attention over the last `window` positions,
//                    RoPE on the first rope_dim dims of each head, o_proj with bias
// Embeddings scaled by bf16(sqrt(dim)); final RMSNorm; tied head; logits soft-capped.
//
// One instance runs one rank's shard (sharding/plan.h): its stage's layers, its query
// heads and the matching RG-LRU channels (whole gate blocks), its MLP units, its
// vocabulary rows; row-parallel partial sums are all-reduced over TP and the row-
// parallel biases added after. The single KV head is replicated. Stages pass the
// residual stream [T][dim] over PP. The per-sequence state (conv inputs, RG-LRU h, the
// KV ring of attention layers) lives in a slot of this worker's RecurrentStatePool.
#pragma once

#include <memory>
#include <vector>

#include "kernels/thread_pool.h"
#include "model/model.h"
#include "model/recurrent_gemma_config.h"
#include "model/recurrent_gemma_weights.h"
#include "model/recurrent_state.h"
#include "sharding/plan.h"

namespace tessera {

class RecurrentGemmaModel final : public DecoderModel {
 public:
  // `pool` and the communicators must outlive the model, and so must the checkpoint
  // that backs the weights' views (model/loader.h).
  RecurrentGemmaModel(RecurrentGemmaConfig config, ShardPlan plan, RecurrentGemmaWeights weights,
                      kernels::ThreadPool& pool, int64_t state_slots, ModelComms comms = {});

  const ModelConfig& config() const override { return rc_.base; }
  const RecurrentGemmaConfig& recurrent_config() const { return rc_; }
  // `cache` is unused: this family's state is the slot pool.
  void forward(std::span<const ForwardSequence> batch, KvCache& cache, float* logits) override;
  int64_t logits_cols() const override { return plan_.vocab_size; }
  int64_t logits_offset() const override { return plan_.vocab_begin; }
  int64_t state_slots() const override { return states_.slots(); }
  void copy_state(int32_t src, int32_t dst) override { states_.copy(src, dst); }
  int64_t state_bytes() const { return states_.bytes(); }

 private:
  void embed(std::span<const ForwardSequence> batch);
  void recurrent_block(int64_t layer, std::span<const ForwardSequence> batch);
  void attention_block(int64_t layer, std::span<const ForwardSequence> batch);
  void mlp_block(int64_t layer);
  // x += proj (+ bias) after summing the TP partials.
  void add_row_parallel(const std::vector<float>& bias);
  void tp_allreduce(float* data, int64_t n);
  void ensure_capacity(int64_t n_tokens);

  RecurrentGemmaConfig rc_;
  ShardPlan plan_;
  RecurrentGemmaWeights w_;
  kernels::ThreadPool& pool_;
  ModelComms comms_;
  RecurrentStatePool states_;
  int64_t q_local_ = 0;    // n_q_heads * head_dim
  int64_t lru_local_ = 0;  // RG-LRU channels owned
  int64_t lru_heads_ = 0;  // gate blocks owned (== n_q_heads)

  // Activations of the current step, T = new tokens of the batch.
  int64_t capacity_ = 0;
  int64_t n_tok_ = 0;
  std::vector<int32_t> pos_;    // [T]
  std::vector<uint8_t> reset_;  // [T] position 0: the RG-LRU forgets
  std::vector<float> x_;        // [T][dim] residual stream
  std::vector<float> xn_;       // [T][dim]
  std::vector<float> proj_;     // [T][dim]
  std::vector<float> br_x_;     // [T][lru_local] linear_x, then RG-LRU input u
  std::vector<float> br_y_;     // [T][lru_local] gelu(linear_y)
  std::vector<float> conv_;     // [T][lru_local] conv output
  std::vector<float> gate_a_;   // [T][lru_local] recurrence gate, then a
  std::vector<float> gate_x_;   // [T][lru_local] input gate
  std::vector<float> q_;        // [T][q_local]
  std::vector<float> k_, v_;    // [T][head_dim]
  std::vector<float> att_;      // [T][q_local]
  std::vector<float> gate_, up_;  // [T][ffn_local]
  std::vector<float> kv_k_, kv_v_;  // [window - 1 + n][head_dim] one sequence's keys/values
};

}  // namespace tessera
