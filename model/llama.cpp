#include "model/llama.h"

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "model/embedding.h"

namespace tessera {

namespace k = kernels;

LlamaModel::LlamaModel(ModelConfig config, ShardPlan plan, LlamaWeights weights, k::ThreadPool& pool,
                       ModelComms comms)
    : config_(std::move(config)), plan_(plan), w_(std::move(weights)), pool_(pool), comms_(comms) {
  q_local_ = plan_.n_q_heads * config_.head_dim;
  kv_local_ = plan_.n_kv_heads * config_.head_dim;
  if (plan_.spec.tp > 1)
    TESSERA_REQUIRE(comms_.tp != nullptr && comms_.tp->size() == plan_.spec.tp, ErrorKind::kInternal,
                    "tp = ", plan_.spec.tp, " needs a TP communicator of that size");
  if (plan_.spec.pp > 1)
    TESSERA_REQUIRE(comms_.pp != nullptr && comms_.pp->size() == plan_.spec.pp, ErrorKind::kInternal,
                    "pp = ", plan_.spec.pp, " needs a PP communicator of that size");
  if (config_.moe.enabled()) {
    if (plan_.spec.ep > 1)
      TESSERA_REQUIRE(comms_.ep != nullptr && comms_.ep->size() == plan_.spec.ep, ErrorKind::kInternal,
                      "ep = ", plan_.spec.ep, " needs an EP communicator of that size");
    MoeParallel mp;
    mp.ep = plan_.spec.ep > 1 ? comms_.ep : nullptr;
    mp.tp = plan_.spec.tp > 1 ? comms_.tp : nullptr;
    mp.expert_begin = plan_.expert_begin;
    mp.n_local = plan_.n_experts;
    moe_ = std::make_unique<MoeLayer>(config_, mp, pool_);
    moe_stats_.resize(static_cast<size_t>(plan_.n_layers()));
  }
  if (comms_.cp != nullptr && comms_.cp->size() > 1) {
    CpAttentionShape shape;
    shape.n_heads = plan_.n_q_heads;
    shape.n_kv_heads = plan_.n_kv_heads;
    shape.head_dim = config_.head_dim;
    shape.scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim));
    cp_ = std::make_unique<CpAttention>(*comms_.cp, pool_, shape);
  }
}

void LlamaModel::moe_stats_reset() {
  for (MoeLayerStats& s : moe_stats_) s = MoeLayerStats{};
}

void LlamaModel::ensure_capacity(int64_t n) {
  if (n <= capacity_) return;
  const ModelConfig& c = config_;
  pos_.resize(n);
  tok_.resize(n);
  x_.resize(n * c.dim);
  xn_.resize(n * c.dim);
  q_.resize(n * q_local_);
  k_.resize(n * kv_local_);
  v_.resize(n * kv_local_);
  att_.resize(n * q_local_);
  proj_.resize(n * c.dim);
  gate_.resize(n * plan_.ffn_size);
  up_.resize(n * plan_.ffn_size);
  capacity_ = n;
}

void LlamaModel::tp_allreduce(float* data, int64_t n) {
  if (plan_.spec.tp > 1) allreduce_sum(*comms_.tp, data, static_cast<size_t>(n));
}

void LlamaModel::forward(std::span<const ForwardSequence> batch, KvCache& cache, float* logits) {
  const ModelConfig& c = config_;
  int64_t n_tok = 0, n_out = 0;
  for (const ForwardSequence& s : batch) {
    TESSERA_REQUIRE(s.pos0 + static_cast<int64_t>(s.tokens.size()) <= c.max_seq_len, ErrorKind::kInvalidInput,
                    "sequence of ", s.pos0 + s.tokens.size(), " tokens exceeds the model's context of ",
                    c.max_seq_len);
    TESSERA_REQUIRE(s.n_outputs >= 0 && s.n_outputs <= static_cast<int64_t>(s.tokens.size()),
                    ErrorKind::kInternal, "n_outputs ", s.n_outputs, " out of range");
    TESSERA_REQUIRE(cp_ != nullptr || static_cast<int64_t>(s.block_table.size()) * cache.shape().block_size >=
                                          s.pos0 + static_cast<int64_t>(s.tokens.size()),
                    ErrorKind::kInternal, "block table too short for the sequence");
    n_tok += static_cast<int64_t>(s.tokens.size());
    n_out += s.n_outputs;
  }
  if (n_tok == 0) return;
  // Under CP this rank runs only its rows (model/cp_layout.h) through the layers.
  std::span<const ForwardSequence> rows = batch;
  if (cp_) {
    n_tok = cp_layout(batch, cache.shape().block_size);
    rows = cp_rows_;
  }
  ensure_capacity(std::max(n_tok, n_out));
  n_tok_ = n_tok;

  int64_t t = 0;
  for (const ForwardSequence& s : rows)
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      tok_[t] = s.tokens[i];
      pos_[t++] = static_cast<int32_t>(s.pos0 + static_cast<int64_t>(i));
    }

  // The residual stream enters from the embedding (first stage) or the previous stage.
  const int pp_rank = plan_.spec.pp_rank;
  if (plan_.first_stage()) {
    embed(rows);
  } else {
    comms_.pp->recv(x_.data(), static_cast<size_t>(n_tok * c.dim), CommType::kF32, pp_rank - 1,
                    MpiTag::kPipelineActivations);
  }

  for (int64_t l = 0; l < plan_.n_layers(); ++l) {
    attention_block(l, batch, cache);
    ffn_block(l);
  }

  if (!plan_.last_stage()) {
    comms_.pp->send(x_.data(), static_cast<size_t>(n_tok * c.dim), CommType::kF32, pp_rank + 1,
                    MpiTag::kPipelineActivations);
    return;
  }
  // Final norm and LM head, only on the rows whose logits are wanted (none for a
  // prefill chunk that does not end its prompt).
  if (n_out == 0) return;
  if (cp_) {
    cp_gather_outputs(batch, n_out);
  } else {
  int64_t row = 0, src = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    for (int64_t i = n - s.n_outputs; i < n; ++i, ++row)
      std::copy_n(x_.data() + (src + i) * c.dim, c.dim, proj_.data() + row * c.dim);
    src += n;
  }
  }
  k::rmsnorm(pool_, proj_.data(), w_.output_norm.data(), xn_.data(), n_out, c.dim, c.norm_eps);
  k::matmul(pool_, w_.output, xn_.data(), n_out, logits);
}

void LlamaModel::embed(std::span<const ForwardSequence> batch) {
  const ModelConfig& c = config_;
  embed_vocab_slice(w_.token_embd, plan_.vocab_begin, plan_.vocab_size, c.vocab_size, c.embedding_scale, batch, c.dim,
                    x_.data());
  tp_allreduce(x_.data(), n_tok_ * c.dim);
}

void LlamaModel::attention_block(int64_t l, std::span<const ForwardSequence> batch, KvCache& cache) {
  const ModelConfig& c = config_;
  const LlamaLayerWeights& lw = w_.layers[l];
  const int64_t n_tok = n_tok_;
  k::rmsnorm(pool_, x_.data(), lw.attn_norm.data(), xn_.data(), n_tok, c.dim, c.norm_eps);
  k::matmul(pool_, lw.wq, xn_.data(), n_tok, q_.data());
  k::matmul(pool_, lw.wk, xn_.data(), n_tok, k_.data());
  k::matmul(pool_, lw.wv, xn_.data(), n_tok, v_.data());
  k::rope(q_.data(), n_tok, plan_.n_q_heads, c.head_dim, c.rope_dim, pos_.data(), c.rope_theta, c.rope_layout);
  k::rope(k_.data(), n_tok, plan_.n_kv_heads, c.head_dim, c.rope_dim, pos_.data(), c.rope_theta, c.rope_layout);

  if (cp_) {  // context parallel: ring / sharded attention (model/cp_attention.h)
    int64_t t0 = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      const CpPlacement& p = cp_place_[i];
      cp_->attend(l, batch[i], p, q_.data() + t0 * q_local_, k_.data() + t0 * kv_local_,
                  v_.data() + t0 * kv_local_, cache, att_.data() + t0 * q_local_);
      t0 += p.rows(cp_->rank());
    }
  } else {
  const int64_t bs = cache.shape().block_size;
  int64_t t0 = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    // Append this step's K/V to the sequence's blocks.
    for (int64_t i = 0; i < n; ++i) {
      std::copy_n(k_.data() + (t0 + i) * kv_local_, kv_local_, cache.k_at(l, s.block_table.data(), s.pos0 + i));
      std::copy_n(v_.data() + (t0 + i) * kv_local_, kv_local_, cache.v_at(l, s.block_table.data(), s.pos0 + i));
    }
    const int64_t n_kv = s.pos0 + n;
    const int64_t n_blocks = (n_kv + bs - 1) / bs;
    k_blocks_.resize(n_blocks);
    v_blocks_.resize(n_blocks);
    for (int64_t b = 0; b < n_blocks; ++b) {
      k_blocks_[b] = cache.k_block(l, s.block_table[b]);
      v_blocks_[b] = cache.v_block(l, s.block_table[b]);
    }
    k::AttentionArgs a;
    a.q = q_.data() + t0 * q_local_;
    a.n_q = n;
    a.n_heads = plan_.n_q_heads;
    a.n_kv_heads = plan_.n_kv_heads;
    a.head_dim = c.head_dim;
    a.k_blocks = k_blocks_.data();
    a.v_blocks = v_blocks_.data();
    a.block_size = bs;
    a.n_kv = n_kv;
    a.q_pos0 = s.pos0;
    a.kv_pos0 = 0;
    a.causal = true;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    a.out = att_.data() + t0 * q_local_;
    k::attention(pool_, a);
    t0 += n;
  }
  }
  k::matmul(pool_, lw.wo, att_.data(), n_tok, proj_.data());
  tp_allreduce(proj_.data(), n_tok * c.dim);
  k::add_inplace(x_.data(), proj_.data(), n_tok * c.dim);
}

void LlamaModel::ffn_block(int64_t l) {
  const ModelConfig& c = config_;
  const LlamaLayerWeights& lw = w_.layers[l];
  const int64_t n_tok = n_tok_;
  k::rmsnorm(pool_, x_.data(), lw.ffn_norm.data(), xn_.data(), n_tok, c.dim, c.norm_eps);
  if (moe_ != nullptr) {
    // The MoE layer returns the full FFN output on every TP rank (no all-reduce here).
    moe_->forward(lw.moe, xn_.data(), tok_.data(), n_tok, proj_.data(), moe_stats_[l]);
    k::add_inplace(x_.data(), proj_.data(), n_tok * c.dim);
    return;
  }
  k::matmul(pool_, lw.w_up, xn_.data(), n_tok, up_.data());
  const int64_t n = n_tok * plan_.ffn_size;
  const float* hidden = gate_.data();  // [T][ffn_local] input of the down projection
  switch (c.ffn) {
    case FfnKind::kSwiGlu:
      k::matmul(pool_, lw.w_gate, xn_.data(), n_tok, gate_.data());
      k::silu_mul(gate_.data(), up_.data(), n);
      break;
    case FfnKind::kGeGlu:
      k::matmul(pool_, lw.w_gate, xn_.data(), n_tok, gate_.data());
      k::gelu_mul(gate_.data(), up_.data(), n);
      break;
    case FfnKind::kGelu:
      k::gelu(up_.data(), n);
      hidden = up_.data();
      break;
    case FfnKind::kSilu:
      k::silu(up_.data(), n);
      hidden = up_.data();
      break;
  }
  k::matmul(pool_, lw.w_down, hidden, n_tok, proj_.data());
  tp_allreduce(proj_.data(), n_tok * c.dim);
  k::add_inplace(x_.data(), proj_.data(), n_tok * c.dim);
}

}  // namespace tessera
