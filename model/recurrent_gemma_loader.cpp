#include "model/recurrent_gemma_loader.h"

#include <cmath>

#include "checkpoint/safetensors_reader.h"
#include "common/error.h"
#include "model/recurrent_gemma.h"

namespace tessera {

namespace {

struct Range {
  int64_t begin, end;
  int64_t size() const { return end - begin; }
};

std::string layer_name(int64_t l, const std::string& rest) { return "model.layers." + std::to_string(l) + "." + rest; }

// Binds tensors by their Hugging Face names, checking shape and dtype against the config.
class Binder {
 public:
  explicit Binder(const checkpoint::Checkpoint& ck) : ck_(ck) {}

  const checkpoint::TensorInfo& check(const std::string& name, const std::vector<int64_t>& shape, bool float_only) {
    const checkpoint::TensorInfo& t = ck_.info(name);
    const DType dt = t.dtype();
    std::string want = "[";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    want += "]";
    TESSERA_REQUIRE(t.shape == shape, ErrorKind::kInvalidInput, t.file, ": tensor ", name, " has shape ",
                    t.shape_string(), ", expected ", want, " from config.json (at offset ", t.offset, ")");
    const bool is_float = dt == DType::kF32 || dt == DType::kF16 || dt == DType::kBF16;
    TESSERA_REQUIRE(is_float || (!float_only && dt != DType::kI32), ErrorKind::kUnsupported, t.file, ": tensor ",
                    name, " is ", dtype_name(dt), "; expected F32, F16 or BF16");
    return t;
  }

  // Rows r of W [rows][cols].
  kernels::WeightMatrix rows(const std::string& name, int64_t n_rows, int64_t cols, Range r) {
    const checkpoint::TensorInfo& t = check(name, {n_rows, cols}, true);
    const checkpoint::RowSlice s = ck_.rows(name, r.begin, r.end);
    kernels::WeightMatrix w;
    w.dtype = t.dtype();
    w.rows = r.size();
    w.cols = cols;
    w.data = s.data;
    w.row_stride = static_cast<int64_t>(s.row_bytes);
    bytes_ += s.size;
    return w;
  }

  // Columns c of every row of W [rows][cols] (row-parallel shard).
  kernels::WeightMatrix cols(const std::string& name, int64_t n_rows, int64_t n_cols, Range c) {
    const checkpoint::TensorInfo& t = check(name, {n_rows, n_cols}, true);
    if (c.begin == 0 && c.end == n_cols) return rows(name, n_rows, n_cols, {0, n_rows});
    const checkpoint::ColumnSlice s = ck_.columns(name, c.begin, c.end);
    kernels::WeightMatrix w;
    w.dtype = t.dtype();
    w.rows = n_rows;
    w.cols = c.size();
    w.data = s.data;
    w.row_stride = static_cast<int64_t>(s.row_stride);
    bytes_ += s.size();
    return w;
  }

  // Elements [r.begin, r.end) of a tensor of `shape` (flattened), as f32.
  std::vector<float> floats(const std::string& name, const std::vector<int64_t>& shape, Range r) {
    const checkpoint::TensorInfo& t = check(name, shape, true);
    const DType dt = t.dtype();
    std::vector<float> v(static_cast<size_t>(r.size()));
    const checkpoint::TensorBytes b = ck_.data(name);
    kernels::dequantize_row(dt, b.data + dtype_row_bytes(dt, r.begin), v.data(), r.size());
    bytes_ += static_cast<uint64_t>(dtype_row_bytes(dt, r.size()));
    return v;
  }

  // A norm scale [n] as the (1 + w) that RMSNorm multiplies by.
  std::vector<float> norm(const std::string& name, int64_t n) {
    std::vector<float> v = floats(name, {n}, {0, n});
    for (float& x : v) x += 1.0f;
    return v;
  }

  uint64_t bytes() const { return bytes_; }

 private:
  const checkpoint::Checkpoint& ck_;
  uint64_t bytes_ = 0;
};

RgRecurrentWeights bind_recurrent(Binder& b, const RecurrentGemmaConfig& rc, const ShardPlan& p, int64_t l) {
  const ModelConfig& c = rc.base;
  const int64_t L = rc.lru_width, D = c.dim, K = rc.conv_width, H = c.n_heads, bw = rc.lru_block();
  const Range heads{p.q_head_begin, p.q_head_begin + p.n_q_heads};
  const Range lru{heads.begin * bw, heads.end * bw};
  auto n = [&](const char* rest) { return layer_name(l, std::string("temporal_block.") + rest); };
  RgRecurrentWeights w;
  w.linear_x = b.rows(n("linear_x.weight"), L, D, lru);
  w.linear_x_b = b.floats(n("linear_x.bias"), {L}, lru);
  w.linear_y = b.rows(n("linear_y.weight"), L, D, lru);
  w.linear_y_b = b.floats(n("linear_y.bias"), {L}, lru);
  w.conv_w = b.floats(n("conv_1d.weight"), {L, 1, K}, {lru.begin * K, lru.end * K});
  w.conv_b = b.floats(n("conv_1d.bias"), {L}, lru);
  // Gates [H][bw in][bw out] (y = x . W[h]); kept transposed, W[h]^T [out][in], for matmul.
  auto gate = [&](const char* name) {
    const std::vector<float> g = b.floats(n(name), {H, bw, bw}, {heads.begin * bw * bw, heads.end * bw * bw});
    std::vector<float> t(g.size());
    for (int64_t h = 0; h < heads.size(); ++h)
      for (int64_t i = 0; i < bw; ++i)
        for (int64_t j = 0; j < bw; ++j) t[(h * bw + j) * bw + i] = g[(h * bw + i) * bw + j];
    return t;
  };
  w.input_gate_t = gate("rg_lru.input_gate_weight");
  w.a_gate_t = gate("rg_lru.recurrent_gate_weight");
  w.input_gate_b = b.floats(n("rg_lru.input_gate_bias"), {H, bw}, lru);
  w.a_gate_b = b.floats(n("rg_lru.recurrent_gate_bias"), {H, bw}, lru);
  w.softplus_a = b.floats(n("rg_lru.recurrent_param"), {L}, lru);
  for (float& a : w.softplus_a)  // torch's softplus (threshold 20), in double
    a = a > 20.0f ? a : static_cast<float>(std::log1p(std::exp(static_cast<double>(a))));
  w.linear_out = b.cols(n("linear_out.weight"), D, L, lru);
  w.linear_out_b = b.floats(n("linear_out.bias"), {D}, {0, D});
  return w;
}

RgAttentionWeights bind_attention(Binder& b, const RecurrentGemmaConfig& rc, const ShardPlan& p, int64_t l) {
  const ModelConfig& c = rc.base;
  const int64_t D = c.dim, hd = c.head_dim;
  const Range q{p.q_head_begin * hd, (p.q_head_begin + p.n_q_heads) * hd};
  auto n = [&](const char* rest) { return layer_name(l, std::string("temporal_block.") + rest); };
  RgAttentionWeights w;
  w.wq = b.rows(n("q_proj.weight"), c.q_dim(), D, q);
  w.wk = b.rows(n("k_proj.weight"), hd, D, {0, hd});
  w.wv = b.rows(n("v_proj.weight"), hd, D, {0, hd});
  w.wo = b.cols(n("o_proj.weight"), D, c.q_dim(), q);
  w.wo_b = b.floats(n("o_proj.bias"), {D}, {0, D});
  return w;
}

}  // namespace

bool is_recurrent_gemma(const checkpoint::Checkpoint& ck) {
  const auto* s = dynamic_cast<const checkpoint::SafetensorsReader*>(&ck);
  return s != nullptr && s->config() != nullptr && is_recurrent_gemma_json(*s->config());
}

RecurrentGemmaConfig load_recurrent_gemma_config(const checkpoint::Checkpoint& ck) {
  const auto* s = dynamic_cast<const checkpoint::SafetensorsReader*>(&ck);
  TESSERA_REQUIRE(s != nullptr && s->config() != nullptr, ErrorKind::kNotFound, ck.path(),
                  ": RecurrentGemma needs safetensors with a config.json next to them");
  return recurrent_gemma_config_from_json(*s->config(), ck.path() + " (config.json)");
}

std::unique_ptr<LoadedModel> load_recurrent_gemma(std::unique_ptr<checkpoint::Checkpoint> ck,
                                                  kernels::ThreadPool& pool, const ShardSpec& spec,
                                                  const ModelComms& comms, const LoadOptions& options) {
  TESSERA_REQUIRE(!options.int8_copy, ErrorKind::kUnsupported, ck->path(),
                  ": the int8 self-draft copy is not implemented for RecurrentGemma");
  const RecurrentGemmaConfig rc = load_recurrent_gemma_config(*ck);
  const ModelConfig& c = rc.base;
  auto loaded = std::make_unique<LoadedModel>();
  loaded->config = c;
  // Heads split over TP (each rank also takes those heads' RG-LRU gate blocks); the MLP
  // units and vocabulary split as for the dense decoder; the KV head is replicated.
  loaded->plan = make_shard_plan(c, spec, 1);
  const ShardPlan& p = loaded->plan;
  Binder b(*ck);
  RecurrentGemmaWeights w;
  const Range vocab{p.vocab_begin, p.vocab_begin + p.vocab_size};
  const Range ffn{p.ffn_begin, p.ffn_begin + p.ffn_size};
  if (p.first_stage()) w.embed = b.rows("model.embed_tokens.weight", c.vocab_size, c.dim, vocab);
  for (int64_t l = p.layer_begin; l < p.layer_end; ++l) {
    RgLayerWeights lw;
    lw.kind = rc.blocks[l];
    lw.temporal_norm = b.norm(layer_name(l, "temporal_pre_norm.weight"), c.dim);
    if (lw.kind == TemporalBlock::kRecurrent)
      lw.rec = bind_recurrent(b, rc, p, l);
    else
      lw.att = bind_attention(b, rc, p, l);
    lw.channel_norm = b.norm(layer_name(l, "channel_pre_norm.weight"), c.dim);
    lw.gate = b.rows(layer_name(l, "mlp_block.gate_proj.weight"), c.ffn_dim, c.dim, ffn);
    lw.gate_b = b.floats(layer_name(l, "mlp_block.gate_proj.bias"), {c.ffn_dim}, ffn);
    lw.up = b.rows(layer_name(l, "mlp_block.up_proj.weight"), c.ffn_dim, c.dim, ffn);
    lw.up_b = b.floats(layer_name(l, "mlp_block.up_proj.bias"), {c.ffn_dim}, ffn);
    lw.down = b.cols(layer_name(l, "mlp_block.down_proj.weight"), c.dim, c.ffn_dim, ffn);
    lw.down_b = b.floats(layer_name(l, "mlp_block.down_proj.bias"), {c.dim}, {0, c.dim});
    w.layers.push_back(std::move(lw));
  }
  if (p.last_stage()) {
    w.final_norm = b.norm("model.final_norm.weight", c.dim);
    // The head is tied to the embedding (transformers' _tied_weights_keys); a stored
    // lm_head.weight is the same matrix and used when present.
    const std::string head = ck->contains("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
    w.head = p.first_stage() && head == "model.embed_tokens.weight" ? w.embed
                                                                    : b.rows(head, c.vocab_size, c.dim, vocab);
  }
  loaded->weight_bytes = b.bytes();
  loaded->streamed_bytes = b.bytes();
  const int64_t slots = options.state_slots;
  loaded->model = std::make_unique<RecurrentGemmaModel>(rc, p, std::move(w), pool, slots, comms);
  loaded->checkpoint = std::move(ck);
  return loaded;
}

}  // namespace tessera
