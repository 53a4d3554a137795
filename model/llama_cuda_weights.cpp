#include "model/llama_cuda_weights.h"

#include <cmath>
#include <initializer_list>

#include <cuda_runtime.h>

#include "common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/random_fill.h"

namespace tessera {

namespace kc = kernels::cuda;

namespace {

kc::DeviceMatrix upload_matrix(CudaLlamaWeights& out, const kernels::WeightMatrix& w, const char* what) {
  TESSERA_REQUIRE(w.dtype == DType::kF32 || w.dtype == DType::kF16 || w.dtype == DType::kBF16 ||
                      w.dtype == DType::kQ8_0,
                  ErrorKind::kUnsupported, "CUDA backend: ", what, " is ", dtype_name(w.dtype),
                  "; the device kernels take F32, F16, BF16 or Q8_0 weights");
  TESSERA_REQUIRE(w.layout == kernels::WeightLayout::kRows, ErrorKind::kUnsupported, "CUDA backend: ", what,
                  " is in the CPU-only Q8Rows16 layout (an int8 draft copy); load it without int8_copy");
  const int64_t row_bytes = dtype_row_bytes(w.dtype, w.cols);
  const int64_t src_stride = w.row_stride ? w.row_stride : row_bytes;
  kc::DeviceBuffer buf(static_cast<size_t>(w.rows * row_bytes));
  TESSERA_CUDA_CHECK(cudaMemcpy2D(buf.get(), static_cast<size_t>(row_bytes), w.data, static_cast<size_t>(src_stride),
                                  static_cast<size_t>(row_bytes), static_cast<size_t>(w.rows), cudaMemcpyHostToDevice));
  kc::DeviceMatrix d{w.dtype, w.rows, w.cols, buf.get(), row_bytes};
  out.bytes += buf.bytes();
  out.storage.push_back(std::move(buf));
  return d;
}

// Uploads the matrices of `parts` (same dtype and cols) back to back into one buffer:
// returns the whole [sum rows][cols] and sets *views[i] to part i. When the dtypes
// differ, uploads them one by one and returns a matrix with data == nullptr.
kc::DeviceMatrix upload_fused(CudaLlamaWeights& out, std::initializer_list<const kernels::WeightMatrix*> parts,
                              std::initializer_list<kc::DeviceMatrix*> views, const char* what) {
  const kernels::WeightMatrix& first = **parts.begin();
  bool same = true;
  int64_t rows = 0;
  for (const kernels::WeightMatrix* p : parts) {
    same = same && p->dtype == first.dtype && p->cols == first.cols;
    rows += p->rows;
  }
  auto view = views.begin();
  if (!same) {
    for (const kernels::WeightMatrix* p : parts) **view++ = upload_matrix(out, *p, what);
    return kc::DeviceMatrix{};
  }
  for (const kernels::WeightMatrix* p : parts)
    TESSERA_REQUIRE(p->dtype == DType::kF32 || p->dtype == DType::kF16 || p->dtype == DType::kBF16 ||
                        p->dtype == DType::kQ8_0,
                    ErrorKind::kUnsupported, "CUDA backend: ", what, " is ", dtype_name(p->dtype),
                    "; the device kernels take F32, F16, BF16 or Q8_0 weights");
  for (const kernels::WeightMatrix* p : parts)
    TESSERA_REQUIRE(p->layout == kernels::WeightLayout::kRows, ErrorKind::kUnsupported, "CUDA backend: ", what,
                    " is in the CPU-only Q8Rows16 layout (an int8 draft copy); load it without int8_copy");
  const int64_t row_bytes = dtype_row_bytes(first.dtype, first.cols);
  kc::DeviceBuffer buf(static_cast<size_t>(rows * row_bytes));
  int64_t r0 = 0;
  for (const kernels::WeightMatrix* p : parts) {
    const int64_t src_stride = p->row_stride ? p->row_stride : row_bytes;
    uint8_t* dst = buf.as<uint8_t>() + r0 * row_bytes;
    TESSERA_CUDA_CHECK(cudaMemcpy2D(dst, static_cast<size_t>(row_bytes), p->data, static_cast<size_t>(src_stride),
                                    static_cast<size_t>(row_bytes), static_cast<size_t>(p->rows),
                                    cudaMemcpyHostToDevice));
    **view++ = kc::DeviceMatrix{first.dtype, p->rows, first.cols, dst, row_bytes};
    r0 += p->rows;
  }
  kc::DeviceMatrix whole{first.dtype, rows, first.cols, buf.get(), row_bytes};
  out.bytes += buf.bytes();
  out.storage.push_back(std::move(buf));
  return whole;
}

const float* upload_vector(CudaLlamaWeights& out, const std::vector<float>& v) {
  kc::DeviceBuffer buf(v.size() * sizeof(float));
  buf.upload(v.data(), v.size() * sizeof(float));
  const float* p = buf.as<float>();
  out.bytes += buf.bytes();
  out.storage.push_back(std::move(buf));
  return p;
}

// Random [sum rows][cols] in one buffer, *views[i] set to the parts of `part_rows`.
kc::DeviceMatrix random_fused(CudaLlamaWeights& out, DType t, std::initializer_list<int64_t> part_rows, int64_t cols,
                              std::initializer_list<kc::DeviceMatrix*> views, uint64_t seed);

kc::DeviceMatrix random_matrix(CudaLlamaWeights& out, DType t, int64_t rows, int64_t cols, uint64_t seed) {
  const int64_t row_bytes = dtype_row_bytes(t, cols);
  kc::DeviceBuffer buf(static_cast<size_t>(rows * row_bytes));
  const float a = 1.0f / std::sqrt(static_cast<float>(cols));
  kc::fill_uniform(buf.get(), t, rows * cols, -a, a, seed, nullptr);
  kc::DeviceMatrix d{t, rows, cols, buf.get(), row_bytes};
  out.bytes += buf.bytes();
  out.storage.push_back(std::move(buf));
  return d;
}

kc::DeviceMatrix random_fused(CudaLlamaWeights& out, DType t, std::initializer_list<int64_t> part_rows, int64_t cols,
                              std::initializer_list<kc::DeviceMatrix*> views, uint64_t seed) {
  int64_t rows = 0;
  for (int64_t r : part_rows) rows += r;
  const kc::DeviceMatrix whole = random_matrix(out, t, rows, cols, seed);
  const int64_t row_bytes = whole.row_stride;
  int64_t r0 = 0;
  auto view = views.begin();
  for (int64_t r : part_rows) {
    **view++ = kc::DeviceMatrix{t, r, cols, static_cast<const uint8_t*>(whole.data) + r0 * row_bytes, row_bytes};
    r0 += r;
  }
  return whole;
}

const float* ones(CudaLlamaWeights& out, int64_t n) {
  return upload_vector(out, std::vector<float>(static_cast<size_t>(n), 1.0f));
}

uint64_t matrix_bytes(const kc::DeviceMatrix& m) { return static_cast<uint64_t>(m.rows * m.row_stride); }

}  // namespace

CudaLlamaWeights upload_llama_weights(const ModelConfig& c, const LlamaWeights& w) {
  TESSERA_REQUIRE(static_cast<int64_t>(w.layers.size()) == c.n_layers && w.token_embd.data && w.output.data,
                  ErrorKind::kUnsupported, "CUDA backend: only a whole model (one rank, every layer) is supported");
  CudaLlamaWeights d;
  d.token_embd = upload_matrix(d, w.token_embd, "token_embd");
  for (const LlamaLayerWeights& lw : w.layers) {
    CudaLlamaLayerWeights l;
    l.attn_norm = upload_vector(d, lw.attn_norm);
    l.wqkv = upload_fused(d, {&lw.wq, &lw.wk, &lw.wv}, {&l.wq, &l.wk, &l.wv}, "attn_q/k/v");
    l.wo = upload_matrix(d, lw.wo, "attn_output");
    l.ffn_norm = upload_vector(d, lw.ffn_norm);
    if (lw.w_gate.data)
      l.w_gate_up = upload_fused(d, {&lw.w_gate, &lw.w_up}, {&l.w_gate, &l.w_up}, "ffn_gate/up");
    else
      l.w_up = upload_matrix(d, lw.w_up, "ffn_up");
    l.w_down = upload_matrix(d, lw.w_down, "ffn_down");
    d.layers.push_back(l);
  }
  d.output_norm = upload_vector(d, w.output_norm);
  const bool tied = w.output.data == w.token_embd.data;
  d.output = tied ? d.token_embd : upload_matrix(d, w.output, "output");
  d.streamed_bytes = d.bytes - (tied ? 0 : matrix_bytes(d.token_embd));
  return d;
}

CudaLlamaWeights random_llama_weights(const ModelConfig& c, DType t, uint64_t seed) {
  CudaLlamaWeights d;
  uint64_t s = seed;
  d.token_embd = random_matrix(d, t, c.vocab_size, c.dim, ++s);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    CudaLlamaLayerWeights l;
    l.attn_norm = ones(d, c.dim);
    l.wqkv = random_fused(d, t, {c.q_dim(), c.kv_dim(), c.kv_dim()}, c.dim, {&l.wq, &l.wk, &l.wv}, ++s);
    l.wo = random_matrix(d, t, c.dim, c.q_dim(), ++s);
    l.ffn_norm = ones(d, c.dim);
    if (c.ffn == FfnKind::kSwiGlu || c.ffn == FfnKind::kGeGlu)
      l.w_gate_up = random_fused(d, t, {c.ffn_dim, c.ffn_dim}, c.dim, {&l.w_gate, &l.w_up}, ++s);
    else
      l.w_up = random_matrix(d, t, c.ffn_dim, c.dim, ++s);
    l.w_down = random_matrix(d, t, c.dim, c.ffn_dim, ++s);
    d.layers.push_back(l);
  }
  d.output_norm = ones(d, c.dim);
  d.output = random_matrix(d, t, c.vocab_size, c.dim, ++s);
  d.streamed_bytes = d.bytes - matrix_bytes(d.token_embd);
  TESSERA_CUDA_CHECK(cudaDeviceSynchronize());
  return d;
}

}  // namespace tessera
