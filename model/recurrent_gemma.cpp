#include "model/recurrent_gemma.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "model/embedding.h"
#include "kernels/recurrent.h"

namespace tessera {

namespace k = kernels;

namespace {

// Every local layer's state size (model/recurrent_state.h).
std::vector<int64_t> state_layout(const RecurrentGemmaConfig& rc, const ShardPlan& plan, int64_t lru_local) {
  std::vector<int64_t> floats;
  for (int64_t l = plan.layer_begin; l < plan.layer_end; ++l) {
    if (rc.blocks[l] == TemporalBlock::kRecurrent)
      floats.push_back((rc.conv_width - 1) * lru_local + lru_local);
    else
      floats.push_back(2 * 2 * rc.window * rc.base.head_dim);  // K and V rings, each doubled
  }
  return floats;
}

void add_bias_rows(float* y, const float* b, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += b[c];
}

}  // namespace

RecurrentGemmaModel::RecurrentGemmaModel(RecurrentGemmaConfig config, ShardPlan plan, RecurrentGemmaWeights weights,
                                         k::ThreadPool& pool, int64_t state_slots, ModelComms comms)
    : rc_(std::move(config)),
      plan_(plan),
      w_(std::move(weights)),
      pool_(pool),
      comms_(comms),
      states_(state_slots, state_layout(rc_, plan_, plan_.n_q_heads * rc_.lru_block())) {
  q_local_ = plan_.n_q_heads * rc_.base.head_dim;
  lru_heads_ = plan_.n_q_heads;
  lru_local_ = lru_heads_ * rc_.lru_block();
  if (plan_.spec.tp > 1)
    TESSERA_REQUIRE(comms_.tp != nullptr && comms_.tp->size() == plan_.spec.tp, ErrorKind::kInternal,
                    "tp = ", plan_.spec.tp, " needs a TP communicator of that size");
  if (plan_.spec.pp > 1)
    TESSERA_REQUIRE(comms_.pp != nullptr && comms_.pp->size() == plan_.spec.pp, ErrorKind::kInternal,
                    "pp = ", plan_.spec.pp, " needs a PP communicator of that size");
}

void RecurrentGemmaModel::ensure_capacity(int64_t n) {
  if (n <= capacity_) return;
  const int64_t dim = rc_.base.dim, hd = rc_.base.head_dim;
  pos_.resize(n);
  reset_.resize(n);
  for (auto* v : {&x_, &xn_, &proj_}) v->resize(n * dim);
  for (auto* v : {&br_x_, &br_y_, &conv_, &gate_a_, &gate_x_}) v->resize(n * lru_local_);
  q_.resize(n * q_local_);
  att_.resize(n * q_local_);
  k_.resize(n * hd);
  v_.resize(n * hd);
  gate_.resize(n * plan_.ffn_size);
  up_.resize(n * plan_.ffn_size);
  capacity_ = n;
}

void RecurrentGemmaModel::tp_allreduce(float* data, int64_t n) {
  if (plan_.spec.tp > 1) allreduce_sum(*comms_.tp, data, static_cast<size_t>(n));
}

void RecurrentGemmaModel::add_row_parallel(const std::vector<float>& bias) {
  const int64_t dim = rc_.base.dim;
  tp_allreduce(proj_.data(), n_tok_ * dim);
  add_bias_rows(proj_.data(), bias.data(), n_tok_, dim);
  k::add_inplace(x_.data(), proj_.data(), n_tok_ * dim);
}

void RecurrentGemmaModel::forward(std::span<const ForwardSequence> batch, KvCache&, float* logits) {
  const ModelConfig& c = rc_.base;
  int64_t n_tok = 0, n_out = 0;
  for (const ForwardSequence& s : batch) {
    TESSERA_REQUIRE(s.pos0 >= 0 && s.pos0 + static_cast<int64_t>(s.tokens.size()) <= c.max_seq_len,
                    ErrorKind::kInvalidInput, "sequence of ", s.pos0 + s.tokens.size(),
                    " tokens exceeds the model's limit of ", c.max_seq_len, " positions");
    TESSERA_REQUIRE(s.n_outputs >= 0 && s.n_outputs <= static_cast<int64_t>(s.tokens.size()),
                    ErrorKind::kInternal, "n_outputs ", s.n_outputs, " out of range");
    states_.check_slot(s.state_slot);
    n_tok += static_cast<int64_t>(s.tokens.size());
    n_out += s.n_outputs;
  }
  for (size_t i = 0; i < batch.size(); ++i)
    for (size_t j = i + 1; j < batch.size(); ++j)
      TESSERA_REQUIRE(batch[i].state_slot != batch[j].state_slot || batch[i].tokens.empty() || batch[j].tokens.empty(),
                      ErrorKind::kInvalidInput, "two sequences of one step share state slot ", batch[i].state_slot);
  if (n_tok == 0) return;
  ensure_capacity(n_tok);
  n_tok_ = n_tok;
  int64_t t = 0;
  for (const ForwardSequence& s : batch) {
    if (s.pos0 == 0 && !s.tokens.empty()) states_.clear(s.state_slot);  // a new sequence
    for (size_t i = 0; i < s.tokens.size(); ++i, ++t) {
      pos_[t] = static_cast<int32_t>(s.pos0 + static_cast<int64_t>(i));
      reset_[t] = pos_[t] == 0;
    }
  }

  const int pp_rank = plan_.spec.pp_rank;
  if (plan_.first_stage()) {
    embed(batch);
  } else {
    comms_.pp->recv(x_.data(), static_cast<size_t>(n_tok * c.dim), CommType::kF32, pp_rank - 1,
                    MpiTag::kPipelineActivations);
  }
  for (int64_t l = 0; l < plan_.n_layers(); ++l) {
    const RgLayerWeights& lw = w_.layers[l];
    k::rmsnorm(pool_, x_.data(), lw.temporal_norm.data(), xn_.data(), n_tok, c.dim, c.norm_eps);
    if (lw.kind == TemporalBlock::kRecurrent) {
      recurrent_block(l, batch);
      add_row_parallel(lw.rec.linear_out_b);
    } else {
      attention_block(l, batch);
      add_row_parallel(lw.att.wo_b);
    }
    mlp_block(l);
  }
  if (!plan_.last_stage()) {
    comms_.pp->send(x_.data(), static_cast<size_t>(n_tok * c.dim), CommType::kF32, pp_rank + 1,
                    MpiTag::kPipelineActivations);
    return;
  }
  if (n_out == 0) return;
  int64_t row = 0, src = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    for (int64_t i = n - s.n_outputs; i < n; ++i, ++row)
      std::copy_n(x_.data() + (src + i) * c.dim, c.dim, proj_.data() + row * c.dim);
    src += n;
  }
  k::rmsnorm(pool_, proj_.data(), w_.final_norm.data(), xn_.data(), n_out, c.dim, c.norm_eps);
  k::matmul(pool_, w_.head, xn_.data(), n_out, logits);
  if (rc_.logits_soft_cap > 0) {
    const float cap = rc_.logits_soft_cap;
    const int64_t n = n_out * plan_.vocab_size;
    for (int64_t i = 0; i < n; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
  }
}

void RecurrentGemmaModel::embed(std::span<const ForwardSequence> batch) {
  const ModelConfig& c = rc_.base;
  embed_vocab_slice(w_.embed, plan_.vocab_begin, plan_.vocab_size, c.vocab_size, c.embedding_scale, batch, c.dim,
                    x_.data());
  tp_allreduce(x_.data(), n_tok_ * c.dim);
}

void RecurrentGemmaModel::recurrent_block(int64_t l, std::span<const ForwardSequence> batch) {
  const RgRecurrentWeights& rw = w_.layers[l].rec;
  const int64_t n_tok = n_tok_, L = lru_local_, K = rc_.conv_width, bw = rc_.lru_block();
  // GeLU branch and x branch, [T][lru_local] each.
  k::matmul(pool_, rw.linear_y, xn_.data(), n_tok, br_y_.data());
  add_bias_rows(br_y_.data(), rw.linear_y_b.data(), n_tok, L);
  k::gelu(br_y_.data(), n_tok * L);
  k::matmul(pool_, rw.linear_x, xn_.data(), n_tok, br_x_.data());
  add_bias_rows(br_x_.data(), rw.linear_x_b.data(), n_tok, L);
  // Temporal conv per sequence, continuing from its slot's last K - 1 inputs.
  int64_t t0 = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    float* conv_state = states_.layer(s.state_slot, l);  // [K-1][L], then h [L]
    k::conv1d_causal(pool_, br_x_.data() + t0 * L, L, rw.conv_w.data(), rw.conv_b.data(), conv_state,
                     conv_.data() + t0 * L, n, L, K);
    t0 += n;
  }
  // Block-diagonal gates: per head, y[T][bw] = x[T][bw] . W[h] + b.
  for (int64_t h = 0; h < lru_heads_; ++h) {
    k::WeightMatrix wm;
    wm.dtype = DType::kF32;
    wm.rows = wm.cols = bw;
    wm.data = rw.input_gate_t.data() + h * bw * bw;
    k::matmul(pool_, wm, conv_.data() + h * bw, n_tok, gate_x_.data() + h * bw, L, L);
    wm.data = rw.a_gate_t.data() + h * bw * bw;
    k::matmul(pool_, wm, conv_.data() + h * bw, n_tok, gate_a_.data() + h * bw, L, L);
  }
  add_bias_rows(gate_x_.data(), rw.input_gate_b.data(), n_tok, L);
  add_bias_rows(gate_a_.data(), rw.a_gate_b.data(), n_tok, L);
  // a_t and u_t (u overwrites the conv output), then the scan per sequence from its h.
  k::rglru_coefficients(pool_, gate_a_.data(), gate_x_.data(), conv_.data(), rw.softplus_a.data(), reset_.data(),
                        n_tok, L);
  t0 = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    float* h = states_.layer(s.state_slot, l) + (K - 1) * L;
    k::rglru_scan(pool_, gate_a_.data() + t0 * L, conv_.data() + t0 * L, h, br_x_.data() + t0 * L, n, L);
    t0 += n;
  }
  for (int64_t i = 0; i < n_tok * L; ++i) br_x_[i] *= br_y_[i];
  k::matmul(pool_, rw.linear_out, br_x_.data(), n_tok, proj_.data());
}

void RecurrentGemmaModel::attention_block(int64_t l, std::span<const ForwardSequence> batch) {
  const ModelConfig& c = rc_.base;
  const RgAttentionWeights& aw = w_.layers[l].att;
  const int64_t n_tok = n_tok_, hd = c.head_dim, W = rc_.window;
  k::matmul(pool_, aw.wq, xn_.data(), n_tok, q_.data());
  k::matmul(pool_, aw.wk, xn_.data(), n_tok, k_.data());
  k::matmul(pool_, aw.wv, xn_.data(), n_tok, v_.data());
  k::rope(q_.data(), n_tok, plan_.n_q_heads, hd, c.rope_dim, pos_.data(), c.rope_theta, c.rope_layout);
  k::rope(k_.data(), n_tok, 1, hd, c.rope_dim, pos_.data(), c.rope_theta, c.rope_layout);
  int64_t t0 = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    // Rings [2W][hd]: position p at rows p % W and p % W + W, so the last W positions
    // are always contiguous (rows s .. s + W - 1 for s = (p - W + 1) % W).
    float* ring_k = states_.layer(s.state_slot, l);
    float* ring_v = ring_k + 2 * W * hd;
    auto ring_put = [&](int64_t t, int64_t p) {
      for (float* ring : {ring_k, ring_v}) {
        const float* src = (ring == ring_k ? k_ : v_).data() + t * hd;
        std::copy_n(src, hd, ring + (p % W) * hd);
        std::copy_n(src, hd, ring + (p % W + W) * hd);
      }
    };
    const float* kb;
    const float* vb;
    int64_t n_hist, n_kv;
    if (n == 1) {  // decode: attend in place over the ring's last min(pos0 + 1, W) positions
      ring_put(t0, s.pos0);
      n_kv = std::min(s.pos0 + 1, W);
      n_hist = n_kv - 1;
      const int64_t row = (s.pos0 - n_hist) % W;
      kb = ring_k + row * hd;
      vb = ring_v + row * hd;
    } else {
      // A chunk: the last W - 1 positions before it (one contiguous ring range), then
      // the chunk's own keys; the window mask does the rest.
      n_hist = std::min(s.pos0, W - 1);
      n_kv = n_hist + n;
      kv_k_.resize(n_kv * hd);
      kv_v_.resize(n_kv * hd);
      const int64_t row = (s.pos0 - n_hist) % W;
      std::copy_n(ring_k + row * hd, n_hist * hd, kv_k_.data());
      std::copy_n(ring_v + row * hd, n_hist * hd, kv_v_.data());
      std::copy_n(k_.data() + t0 * hd, n * hd, kv_k_.data() + n_hist * hd);
      std::copy_n(v_.data() + t0 * hd, n * hd, kv_v_.data() + n_hist * hd);
      for (int64_t i = std::max<int64_t>(0, n - W); i < n; ++i) ring_put(t0 + i, s.pos0 + i);
      kb = kv_k_.data();
      vb = kv_v_.data();
    }
    k::AttentionArgs a;
    a.q = q_.data() + t0 * q_local_;
    a.n_q = n;
    a.n_heads = plan_.n_q_heads;
    a.n_kv_heads = 1;
    a.head_dim = hd;
    a.k_blocks = &kb;
    a.v_blocks = &vb;
    a.block_size = n_kv;
    a.n_kv = n_kv;
    a.q_pos0 = s.pos0;
    a.kv_pos0 = s.pos0 - n_hist;
    a.causal = true;
    a.window = W;
    a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    a.out = att_.data() + t0 * q_local_;
    k::attention(pool_, a);
    t0 += n;
  }
  k::matmul(pool_, aw.wo, att_.data(), n_tok, proj_.data());
}

void RecurrentGemmaModel::mlp_block(int64_t l) {
  const ModelConfig& c = rc_.base;
  const RgLayerWeights& lw = w_.layers[l];
  const int64_t n_tok = n_tok_, f = plan_.ffn_size;
  k::rmsnorm(pool_, x_.data(), lw.channel_norm.data(), xn_.data(), n_tok, c.dim, c.norm_eps);
  k::matmul(pool_, lw.gate, xn_.data(), n_tok, gate_.data());
  add_bias_rows(gate_.data(), lw.gate_b.data(), n_tok, f);
  k::matmul(pool_, lw.up, xn_.data(), n_tok, up_.data());
  add_bias_rows(up_.data(), lw.up_b.data(), n_tok, f);
  k::gelu_mul(gate_.data(), up_.data(), n_tok * f);
  k::matmul(pool_, lw.down, gate_.data(), n_tok, proj_.data());
  add_row_parallel(lw.down_b);
}

}  // namespace tessera
