#include "model/llama.h"

#include <cmath>

#include "common/error.h"

namespace tessera {

namespace k = kernels;

LlamaModel::LlamaModel(ModelConfig config, LlamaWeights weights, k::ThreadPool& pool)
    : config_(std::move(config)), w_(std::move(weights)), pool_(pool) {}

void LlamaModel::ensure_capacity(int64_t n) {
  if (n <= capacity_) return;
  const ModelConfig& c = config_;
  pos_.resize(n);
  x_.resize(n * c.dim);
  xn_.resize(n * c.dim);
  q_.resize(n * c.q_dim());
  k_.resize(n * c.kv_dim());
  v_.resize(n * c.kv_dim());
  att_.resize(n * c.q_dim());
  proj_.resize(n * c.dim);
  gate_.resize(n * c.ffn_dim);
  up_.resize(n * c.ffn_dim);
  capacity_ = n;
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
    TESSERA_REQUIRE(static_cast<int64_t>(s.block_table.size()) * cache.shape().block_size >=
                        s.pos0 + static_cast<int64_t>(s.tokens.size()),
                    ErrorKind::kInternal, "block table too short for the sequence");
    n_tok += static_cast<int64_t>(s.tokens.size());
    n_out += s.n_outputs;
  }
  if (n_tok == 0) return;
  ensure_capacity(n_tok);
  n_tok_ = n_tok;

  // Embedding lookup (dequantised rows) and positions.
  const int64_t emb_row_bytes = w_.token_embd.row_stride;
  int64_t t = 0;
  for (const ForwardSequence& s : batch) {
    for (size_t i = 0; i < s.tokens.size(); ++i, ++t) {
      const int32_t tok = s.tokens[i];
      TESSERA_REQUIRE(tok >= 0 && tok < c.vocab_size, ErrorKind::kInvalidInput, "token id ", tok,
                      " is outside the vocabulary of ", c.vocab_size);
      const auto* row = static_cast<const uint8_t*>(w_.token_embd.data) + tok * emb_row_bytes;
      k::dequantize_row(w_.token_embd.dtype, row, x_.data() + t * c.dim, c.dim);
      if (c.embedding_scale != 1.0f)
        for (int64_t j = 0; j < c.dim; ++j) x_[t * c.dim + j] *= c.embedding_scale;
      pos_[t] = static_cast<int32_t>(s.pos0 + static_cast<int64_t>(i));
    }
  }

  for (int64_t l = 0; l < c.n_layers; ++l) {
    attention_block(l, batch, cache);
    ffn_block(l);
  }

  // Final norm and LM head, only on the rows whose logits are wanted (none for a
  // prefill chunk that does not end its prompt).
  if (n_out == 0) return;
  int64_t row = 0, src = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    for (int64_t i = n - s.n_outputs; i < n; ++i, ++row)
      std::copy_n(x_.data() + (src + i) * c.dim, c.dim, proj_.data() + row * c.dim);
    src += n;
  }
  k::rmsnorm(pool_, proj_.data(), w_.output_norm.data(), xn_.data(), n_out, c.dim, c.norm_eps);
  k::matmul(pool_, w_.output, xn_.data(), n_out, logits);
}

void LlamaModel::attention_block(int64_t l, std::span<const ForwardSequence> batch, KvCache& cache) {
  const ModelConfig& c = config_;
  const LlamaLayerWeights& lw = w_.layers[l];
  const int64_t n_tok = n_tok_;
  k::rmsnorm(pool_, x_.data(), lw.attn_norm.data(), xn_.data(), n_tok, c.dim, c.norm_eps);
  k::matmul(pool_, lw.wq, xn_.data(), n_tok, q_.data());
  k::matmul(pool_, lw.wk, xn_.data(), n_tok, k_.data());
  k::matmul(pool_, lw.wv, xn_.data(), n_tok, v_.data());
  k::rope(q_.data(), n_tok, c.n_heads, c.head_dim, c.rope_dim, pos_.data(), c.rope_theta, c.rope_layout);
  k::rope(k_.data(), n_tok, c.n_kv_heads, c.head_dim, c.rope_dim, pos_.data(), c.rope_theta, c.rope_layout);

  const int64_t kv_dim = c.kv_dim();
  const int64_t bs = cache.shape().block_size;
  int64_t t0 = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    // Append this step's K/V to the sequence's blocks.
    for (int64_t i = 0; i < n; ++i) {
      std::copy_n(k_.data() + (t0 + i) * kv_dim, kv_dim, cache.k_at(l, s.block_table.data(), s.pos0 + i));
      std::copy_n(v_.data() + (t0 + i) * kv_dim, kv_dim, cache.v_at(l, s.block_table.data(), s.pos0 + i));
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
    a.q = q_.data() + t0 * c.q_dim();
    a.n_q = n;
    a.n_heads = c.n_heads;
    a.n_kv_heads = c.n_kv_heads;
    a.head_dim = c.head_dim;
    a.k_blocks = k_blocks_.data();
    a.v_blocks = v_blocks_.data();
    a.block_size = bs;
    a.n_kv = n_kv;
    a.q_pos0 = s.pos0;
    a.kv_pos0 = 0;
    a.causal = true;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    a.out = att_.data() + t0 * c.q_dim();
    k::attention(pool_, a);
    t0 += n;
  }
  k::matmul(pool_, lw.wo, att_.data(), n_tok, proj_.data());
  k::add_inplace(x_.data(), proj_.data(), n_tok * c.dim);
}

void LlamaModel::ffn_block(int64_t l) {
  const ModelConfig& c = config_;
  const LlamaLayerWeights& lw = w_.layers[l];
  const int64_t n_tok = n_tok_;
  k::rmsnorm(pool_, x_.data(), lw.ffn_norm.data(), xn_.data(), n_tok, c.dim, c.norm_eps);
  k::matmul(pool_, lw.w_up, xn_.data(), n_tok, up_.data());
  const int64_t n = n_tok * c.ffn_dim;
  const float* hidden = gate_.data();  // [T][ffn_dim] input of the down projection
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
  k::add_inplace(x_.data(), proj_.data(), n_tok * c.dim);
}

}  // namespace tessera
