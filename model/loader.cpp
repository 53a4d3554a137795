#include "model/loader.h"

#include "checkpoint/open.h"
#include "common/error.h"
#include "model/config_loader.h"
#include "model/llama.h"
#include "model/tensor_names.h"

namespace tessera {

namespace {

class WeightBinder {
 public:
  WeightBinder(const checkpoint::Checkpoint& ck, TensorNaming naming) : ck_(ck), naming_(naming) {}

  // W [rows][cols] as a view into the map; the stored shape must match exactly.
  kernels::WeightMatrix matrix(TensorRole role, int64_t layer, int64_t rows, int64_t cols) {
    const std::string name = tensor_name(naming_, role, layer);
    const checkpoint::TensorInfo& t = ck_.info(name);
    const DType dt = t.dtype();  // an unusable dtype is the more useful error
    TESSERA_REQUIRE(t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == cols, ErrorKind::kInvalidInput,
                    t.file, ": tensor ", name, " has shape ", t.shape_string(), ", expected [", rows, ", ", cols,
                    "] (at offset ", t.offset, ")");
    TESSERA_REQUIRE(dt != DType::kI32, ErrorKind::kUnsupported, t.file, ": tensor ", name,
                    " is an integer tensor; weights must be F32, F16, BF16, Q8_0, Q4_0 or Q4_1");
    TESSERA_REQUIRE(cols % dtype_block_elems(dt) == 0, ErrorKind::kInvalidInput, t.file, ": tensor ", name,
                    ": row length ", cols, " is not a multiple of the ", dtype_name(dt), " block size");
    kernels::WeightMatrix w;
    w.dtype = dt;
    w.rows = rows;
    w.cols = cols;
    w.data = ck_.data(name).data;
    w.row_stride = dtype_row_bytes(dt, cols);
    bytes_ += t.size;
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

 private:
  const checkpoint::Checkpoint& ck_;
  TensorNaming naming_;
  uint64_t bytes_ = 0;
};

LlamaWeights bind_llama(const checkpoint::Checkpoint& ck, const ModelConfig& c, WeightBinder& b) {
  LlamaWeights w;
  w.token_embd = b.matrix(TensorRole::kTokenEmbd, -1, c.vocab_size, c.dim);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LlamaLayerWeights lw;
    lw.attn_norm = b.vector(TensorRole::kAttnNorm, l, c.dim);
    lw.wq = b.matrix(TensorRole::kAttnQ, l, c.q_dim(), c.dim);
    lw.wk = b.matrix(TensorRole::kAttnK, l, c.kv_dim(), c.dim);
    lw.wv = b.matrix(TensorRole::kAttnV, l, c.kv_dim(), c.dim);
    lw.wo = b.matrix(TensorRole::kAttnOut, l, c.dim, c.q_dim());
    lw.ffn_norm = b.vector(TensorRole::kFfnNorm, l, c.dim);
    if (c.ffn == FfnKind::kSwiGlu || c.ffn == FfnKind::kGeGlu)
      lw.w_gate = b.matrix(TensorRole::kFfnGate, l, c.ffn_dim, c.dim);
    lw.w_up = b.matrix(TensorRole::kFfnUp, l, c.ffn_dim, c.dim);
    lw.w_down = b.matrix(TensorRole::kFfnDown, l, c.dim, c.ffn_dim);
    w.layers.push_back(std::move(lw));
  }
  w.output_norm = b.vector(TensorRole::kOutputNorm, -1, c.dim);
  // Tied heads reuse the embedding; some files store the tied copy explicitly anyway
  // (the stories260K GGUF does), which is used when present.
  w.output = b.has(TensorRole::kOutput) ? b.matrix(TensorRole::kOutput, -1, c.vocab_size, c.dim) : w.token_embd;
  TESSERA_REQUIRE(c.tied_embeddings || b.has(TensorRole::kOutput), ErrorKind::kNotFound, ck.path(),
                  ": the LM head tensor is missing and the config does not tie it to the embedding");
  return w;
}

}  // namespace

std::unique_ptr<LoadedModel> load_model(std::unique_ptr<checkpoint::Checkpoint> ck, kernels::ThreadPool& pool) {
  auto loaded = std::make_unique<LoadedModel>();
  loaded->config = load_model_config(*ck);
  const TensorNaming naming =
      ck->format() == "safetensors" ? TensorNaming::kHuggingFace : TensorNaming::kGguf;
  WeightBinder binder(*ck, naming);
  LlamaWeights weights = bind_llama(*ck, loaded->config, binder);
  loaded->weight_bytes = binder.bytes();
  const uint64_t embd_bytes = ck->info(tensor_name(naming, TensorRole::kTokenEmbd)).size;
  const bool head_is_embd = weights.output.data == weights.token_embd.data;
  loaded->streamed_bytes = loaded->weight_bytes - (head_is_embd ? 0 : embd_bytes);
  loaded->model = std::make_unique<LlamaModel>(loaded->config, std::move(weights), pool);
  loaded->checkpoint = std::move(ck);
  return loaded;
}

std::unique_ptr<LoadedModel> load_model(const std::string& path, kernels::ThreadPool& pool) {
  return load_model(checkpoint::open_checkpoint(path), pool);
}

}  // namespace tessera
