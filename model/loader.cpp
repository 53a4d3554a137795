#include "model/loader.h"

#include <algorithm>

#include "checkpoint/open.h"
#include "common/error.h"
#include "model/config_loader.h"
#include "model/int8_copy.h"
#include "model/llama.h"
#include "model/moe_loader.h"
#include "model/recurrent_gemma_loader.h"
#include "model/tensor_names.h"

namespace tessera {

namespace {

struct Range {
  int64_t begin, end;
};

class WeightBinder {
 public:
  // GGUF weights compute like llama.cpp (F16/BF16 activations rounded to the weight
  // type); Hugging Face weights like transformers (f32 activations). Block-quantised
  // weights always quantise activations to Q8 blocks, as llama.cpp does.
  WeightBinder(const checkpoint::Checkpoint& ck, TensorNaming naming)
      : ck_(ck),
        naming_(naming),
        act_rounding_(naming == TensorNaming::kGguf ? kernels::ActRounding::kWeightType
                                                    : kernels::ActRounding::kNone) {}

  // W [rows][cols], checked against the stored shape and dtype.
  const checkpoint::TensorInfo& check_matrix(const std::string& name, int64_t rows, int64_t cols) {
    const checkpoint::TensorInfo& t = ck_.info(name);
    const DType dt = t.dtype();  // an unusable dtype is the more useful error
    TESSERA_REQUIRE(t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == cols, ErrorKind::kInvalidInput,
                    t.file, ": tensor ", name, " has shape ", t.shape_string(), ", expected [", rows, ", ", cols,
                    "] (at offset ", t.offset, ")");
    TESSERA_REQUIRE(dt != DType::kI32, ErrorKind::kUnsupported, t.file, ": tensor ", name,
                    " is an integer tensor; weights must be F32, F16, BF16, Q8_0, Q4_0 or Q4_1");
    TESSERA_REQUIRE(cols % dtype_block_elems(dt) == 0, ErrorKind::kInvalidInput, t.file, ": tensor ", name,
                    ": row length ", cols, " is not a multiple of the ", dtype_name(dt), " block size");
    return t;
  }

  // Rows [r.begin, r.end) of W [rows][cols]: a column-parallel shard (or all of W).
  kernels::WeightMatrix matrix_rows(TensorRole role, int64_t layer, int64_t rows, int64_t cols, Range r) {
    const std::string name = tensor_name(naming_, role, layer);
    const checkpoint::TensorInfo& t = check_matrix(name, rows, cols);
    const checkpoint::RowSlice slice = ck_.rows(name, r.begin, r.end);
    kernels::WeightMatrix w;
    w.dtype = t.dtype();
    w.rows = r.end - r.begin;
    w.cols = cols;
    w.data = slice.data;
    w.row_stride = static_cast<int64_t>(slice.row_bytes);
    w.act_rounding = act_rounding_;
    bytes_ += slice.size;
    return w;
  }

  // Columns [c.begin, c.end) of every row of W [rows][cols]: a row-parallel shard, a
  // strided view whose rows stay row_stride bytes apart.
  kernels::WeightMatrix matrix_cols(TensorRole role, int64_t layer, int64_t rows, int64_t cols, Range c) {
    const std::string name = tensor_name(naming_, role, layer);
    const checkpoint::TensorInfo& t = check_matrix(name, rows, cols);
    if (c.begin == 0 && c.end == cols) return matrix_rows(role, layer, rows, cols, {0, rows});
    const checkpoint::ColumnSlice slice = ck_.columns(name, c.begin, c.end);
    kernels::WeightMatrix w;
    w.dtype = t.dtype();
    w.rows = rows;
    w.cols = c.end - c.begin;
    w.data = slice.data;
    w.row_stride = static_cast<int64_t>(slice.row_stride);
    w.act_rounding = act_rounding_;
    bytes_ += slice.size();
    return w;
  }

  // A norm weight vector, converted to f32.
  std::vector<float> vector(TensorRole role, int64_t layer, int64_t n) {
    const std::string name = tensor_name(naming_, role, layer);
    const checkpoint::TensorInfo& t = ck_.info(name);
    TESSERA_REQUIRE(t.elements() == n && (t.shape.size() == 1 || (t.shape.size() == 2 && t.shape[0] == 1)),
                    ErrorKind::kInvalidInput, t.file, ": tensor ", name, " has shape ", t.shape_string(),
                    ", expected [", n, "] (at offset ", t.offset, ")");
    const DType dt = t.dtype();
    TESSERA_REQUIRE(dt == DType::kF32 || dt == DType::kF16 || dt == DType::kBF16, ErrorKind::kUnsupported, t.file,
                    ": tensor ", name, " is ", dtype_name(dt), "; norm weights must be F32, F16 or BF16");
    std::vector<float> v(static_cast<size_t>(n));
    kernels::dequantize_row(dt, ck_.data(name).data, v.data(), n);
    bytes_ += t.size;
    return v;
  }

  bool has(TensorRole role) const { return ck_.contains(tensor_name(naming_, role)); }
  uint64_t bytes() const { return bytes_; }
  // A MoE layer's tensors (model/moe_loader.h), bound with this binder's conventions.
  MoeLayerWeights moe_layer(const ModelConfig& c, const ShardPlan& p, int64_t layer) {
    return bind_moe_layer(ck_, naming_, c, p, layer, act_rounding_, bytes_);
  }

 private:
  const checkpoint::Checkpoint& ck_;
  TensorNaming naming_;
  kernels::ActRounding act_rounding_;
  uint64_t bytes_ = 0;
};

// Binds the weights this rank's plan owns (DESIGN.md, "Sharding"): column-parallel
// Q/K/V and gate/up rows, row-parallel attention-output and down columns, the stage's
// layers only, the vocabulary rows of the embedding (first stage) and LM head (last).
LlamaWeights bind_llama(const checkpoint::Checkpoint& ck, const ModelConfig& c, const ShardPlan& p,
                        WeightBinder& b) {
  LlamaWeights w;
  const int64_t hd = c.head_dim;
  const Range vocab{p.vocab_begin, p.vocab_begin + p.vocab_size};
  if (p.first_stage()) w.token_embd = b.matrix_rows(TensorRole::kTokenEmbd, -1, c.vocab_size, c.dim, vocab);
  const Range q{p.q_head_begin * hd, (p.q_head_begin + p.n_q_heads) * hd};
  const Range kv{p.kv_head_begin * hd, (p.kv_head_begin + p.n_kv_heads) * hd};
  const Range ffn{p.ffn_begin, p.ffn_begin + p.ffn_size};
  for (int64_t l = p.layer_begin; l < p.layer_end; ++l) {
    LlamaLayerWeights lw;
    lw.attn_norm = b.vector(TensorRole::kAttnNorm, l, c.dim);
    lw.wq = b.matrix_rows(TensorRole::kAttnQ, l, c.q_dim(), c.dim, q);
    lw.wk = b.matrix_rows(TensorRole::kAttnK, l, c.kv_dim(), c.dim, kv);
    lw.wv = b.matrix_rows(TensorRole::kAttnV, l, c.kv_dim(), c.dim, kv);
    lw.wo = b.matrix_cols(TensorRole::kAttnOut, l, c.dim, c.q_dim(), q);
    lw.ffn_norm = b.vector(TensorRole::kFfnNorm, l, c.dim);
    if (c.moe.enabled()) {
      lw.moe = b.moe_layer(c, p, l);
      w.layers.push_back(std::move(lw));
      continue;
    }
    if (c.ffn == FfnKind::kSwiGlu || c.ffn == FfnKind::kGeGlu)
      lw.w_gate = b.matrix_rows(TensorRole::kFfnGate, l, c.ffn_dim, c.dim, ffn);
    lw.w_up = b.matrix_rows(TensorRole::kFfnUp, l, c.ffn_dim, c.dim, ffn);
    lw.w_down = b.matrix_cols(TensorRole::kFfnDown, l, c.dim, c.ffn_dim, ffn);
    w.layers.push_back(std::move(lw));
  }
  TESSERA_REQUIRE(c.tied_embeddings || b.has(TensorRole::kOutput), ErrorKind::kNotFound, ck.path(),
                  ": the LM head tensor is missing and the config does not tie it to the embedding");
  if (p.last_stage()) {
    w.output_norm = b.vector(TensorRole::kOutputNorm, -1, c.dim);
    // Tied heads reuse the embedding; some files store the tied copy explicitly anyway
    // (the stories260K GGUF does), which is used when present.
    const TensorRole head = b.has(TensorRole::kOutput) ? TensorRole::kOutput : TensorRole::kTokenEmbd;
    if (head == TensorRole::kTokenEmbd && p.first_stage()) {
      w.output = w.token_embd;
    } else {
      w.output = b.matrix_rows(head, -1, c.vocab_size, c.dim, vocab);
    }
  }
  return w;
}

}  // namespace

std::unique_ptr<LoadedModel> load_model(std::unique_ptr<checkpoint::Checkpoint> ck, kernels::ThreadPool& pool,
                                        const ShardSpec& spec, const ModelComms& comms,
                                        const LoadOptions& options) {
  if (is_recurrent_gemma(*ck)) return load_recurrent_gemma(std::move(ck), pool, spec, comms, options);
  auto loaded = std::make_unique<LoadedModel>();
  loaded->config = load_model_config(*ck);
  const TensorNaming naming = ck->format() == "safetensors" ? TensorNaming::kHuggingFace : TensorNaming::kGguf;
  // Row-parallel slices must fall on quantisation blocks: use the attention-output dtype.
  const DType wo_type = ck->info(tensor_name(naming, TensorRole::kAttnOut, 0)).dtype();
  loaded->plan = make_shard_plan(loaded->config, spec, dtype_block_elems(wo_type));
  WeightBinder binder(*ck, naming);
  LlamaWeights weights = bind_llama(*ck, loaded->config, loaded->plan, binder);
  loaded->weight_bytes = binder.bytes();
  // A decode step streams every bound matrix except the embedding table (one row of it),
  // unless that table is also the LM head.
  const bool embd_is_head = weights.output.data != nullptr && weights.output.data == weights.token_embd.data;
  const uint64_t embd_bytes =
      weights.token_embd.data != nullptr ? static_cast<uint64_t>(weights.token_embd.rows * weights.token_embd.row_stride) : 0;
  loaded->streamed_bytes = loaded->weight_bytes - (embd_is_head ? 0 : embd_bytes);
  // A MoE decode step reads top_k of the E experts of each layer (at most the local ones).
  if (loaded->config.moe.enabled()) {
    uint64_t expert_bytes = 0;
    for (const LlamaLayerWeights& l : weights.layers)
      for (const MoeExpertWeights& e : l.moe.experts)
        for (const kernels::WeightMatrix* m : {&e.gate, &e.up, &e.down})
          expert_bytes += static_cast<uint64_t>(m->rows * m->row_stride);
    const MoeConfig& m = loaded->config.moe;
    const double used = std::min(1.0, static_cast<double>(m.top_k) / static_cast<double>(loaded->plan.n_experts));
    loaded->streamed_bytes -= expert_bytes - static_cast<uint64_t>(used * static_cast<double>(expert_bytes));
  }
  if (options.int8_copy) {
    const Int8CopyStats st = make_int8_copy(weights, loaded->owned_weights);
    loaded->weight_bytes = loaded->weight_bytes - st.bytes_before + st.bytes_after;
    loaded->streamed_bytes = loaded->streamed_bytes - st.bytes_before + st.bytes_after;
  }
  loaded->model = std::make_unique<LlamaModel>(loaded->config, loaded->plan, std::move(weights), pool, comms);
  loaded->checkpoint = std::move(ck);
  return loaded;
}

std::unique_ptr<LoadedModel> load_model(const std::string& path, kernels::ThreadPool& pool, const ShardSpec& spec,
                                        const ModelComms& comms, const LoadOptions& options) {
  return load_model(checkpoint::open_checkpoint(path), pool, spec, comms, options);
}

}  // namespace tessera
