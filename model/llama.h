// The dense decoder: RMSNorm -> attention (RoPE, GQA/MQA) -> residual -> RMSNorm ->
// gated or plain FFN -> residual; final RMSNorm; LM head (tied or untied).
//
// One instance runs one rank's shard (sharding/plan.h): its stage's layers, its heads
// and FFN units (partial sums all-reduced over the TP group after the attention output
// and FFN down projections), its vocabulary rows of the embedding (first stage; the
// looked-up rows are all-reduced) and LM head (last stage). Stages pass the residual
// stream [T][dim] to the next stage over the PP communicator.
#pragma once

#include <memory>
#include <vector>

#include "kernels/thread_pool.h"
#include "model/cp_attention.h"
#include "model/llama_weights.h"
#include "model/model.h"
#include "model/moe_layer.h"
#include "sharding/plan.h"

namespace tessera {

class LlamaModel final : public DecoderModel {
 public:
  // `pool` and the communicators must outlive the model; the weights' views must stay
  // valid (the checkpoint that backs them is owned next to the model, model/loader.h).
  LlamaModel(ModelConfig config, ShardPlan plan, LlamaWeights weights, kernels::ThreadPool& pool,
             ModelComms comms = {});

  const ModelConfig& config() const override { return config_; }
  void forward(std::span<const ForwardSequence> batch, KvCache& cache, float* logits) override;
  int64_t logits_cols() const override { return plan_.vocab_size; }
  int64_t logits_offset() const override { return plan_.vocab_begin; }
  // MoE models: per-layer expert load and time split of this rank's layers (empty for
  // dense models). Index i is layer plan().layer_begin + i.
  const std::vector<MoeLayerStats>& moe_stats() const { return moe_stats_; }
  const ShardPlan& plan() const { return plan_; }
  void moe_stats_reset();
  // The bound weights (views into the checkpoint): what the CUDA backend uploads.
  const LlamaWeights& weights() const { return w_; }
  // Context parallelism's attention counters; null without a CP ring (comms.cp).
  const CpAttentionStats* cp_stats() const { return cp_ ? &cp_->stats() : nullptr; }

 private:
  void embed(std::span<const ForwardSequence> batch);
  void attention_block(int64_t layer, std::span<const ForwardSequence> batch, KvCache& cache);
  void ffn_block(int64_t layer);
  void tp_allreduce(float* data, int64_t n);
  void ensure_capacity(int64_t n_tokens);
  // Context parallelism (model/cp_layout.h): places every slice, fills cp_rows_ with this
  // rank's rows as slices of their sequences and returns how many rows that is.
  int64_t cp_layout(std::span<const ForwardSequence> batch, int64_t block_size);
  // Copies the rows whose logits are wanted, [n_out][dim], into proj_ on every CP rank
  // (each from the rank that computed it, summed over the ring).
  void cp_gather_outputs(std::span<const ForwardSequence> batch, int64_t n_out);

  ModelConfig config_;
  ShardPlan plan_;
  LlamaWeights w_;
  kernels::ThreadPool& pool_;
  ModelComms comms_;
  // Per-rank widths.
  int64_t q_local_ = 0;    // n_q_heads * head_dim
  int64_t kv_local_ = 0;   // n_kv_heads * head_dim

  // Activations of the current step, T = new tokens in the batch.
  int64_t capacity_ = 0;
  int64_t n_tok_ = 0;           // T of the step in progress
  std::vector<int32_t> pos_;    // [T] absolute positions
  std::vector<float> x_;        // [T][dim] residual stream
  std::vector<float> xn_;       // [T][dim] normalised input of a block
  std::vector<float> q_;        // [T][q_local]
  std::vector<float> k_;        // [T][kv_local]
  std::vector<float> v_;        // [T][kv_local]
  std::vector<float> att_;      // [T][q_local]
  std::vector<float> proj_;     // [T][dim]
  std::vector<float> gate_;     // [T][ffn_local]
  std::vector<float> up_;       // [T][ffn_local]
  std::vector<const float*> k_blocks_, v_blocks_;  // one sequence's block pointers
  std::vector<int32_t> tok_;    // [T] token ids of the step (MoE hash router)
  std::unique_ptr<MoeLayer> moe_;            // MoE models: the FFN of every layer
  std::vector<MoeLayerStats> moe_stats_;     // per layer of this stage
  // Context parallelism: null without a CP ring of more than one rank.
  std::unique_ptr<CpAttention> cp_;
  std::vector<CpPlacement> cp_place_;     // per sequence of the step
  std::vector<ForwardSequence> cp_rows_;  // this rank's rows: contiguous pieces of the slices
};

}  // namespace tessera
