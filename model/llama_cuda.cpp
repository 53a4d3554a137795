#include "model/llama_cuda.h"

#include <cmath>
#include <cstring>

#include <cuda_runtime.h>

#include "common/error.h"
#include <glog/logging.h>
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/sampling.h"

namespace tessera {

namespace kc = kernels::cuda;

void CudaLlamaModel::PinnedDeleter::operator()(void* p) const { cudaFreeHost(p); }

CudaLlamaModel::CudaLlamaModel(ModelConfig config, CudaLlamaWeights weights, const KvCacheShape& kv)
    : config_(std::move(config)), w_(std::move(weights)), kv_(kv), gemm_(stream_.get(), pool_) {
  const ModelConfig& c = config_;
  TESSERA_REQUIRE(kv.n_layers == c.n_layers && kv.n_kv_heads == c.n_kv_heads && kv.head_dim == c.head_dim &&
                      kv.n_blocks > 0 && kv.block_size > 0,
                  ErrorKind::kInvalidInput, "CUDA KV cache shape (layers ", kv.n_layers, ", kv heads ", kv.n_kv_heads,
                  ", head_dim ", kv.head_dim, ", blocks ", kv.n_blocks, " x ", kv.block_size,
                  ") does not fit the model (layers ", c.n_layers, ", kv heads ", c.n_kv_heads, ", head_dim ",
                  c.head_dim, ")");
  TESSERA_REQUIRE(static_cast<int64_t>(w_.layers.size()) == c.n_layers, ErrorKind::kInvalidInput,
                  "CUDA weights hold ", w_.layers.size(), " layers, the config ", c.n_layers);
  sm_count_ = kc::device_info().sm_count;
  const std::vector<float> inv_freq = kc::rope_inv_freq_table(c.rope_dim, c.rope_theta);
  inv_freq_ = kc::DeviceBuffer(inv_freq.size() * sizeof(float));
  inv_freq_.upload(inv_freq.data(), inv_freq.size() * sizeof(float));
  const size_t cache_bytes = static_cast<size_t>(kv.bytes() / 2);
  k_cache_ = kc::DeviceBuffer(cache_bytes);
  v_cache_ = kc::DeviceBuffer(cache_bytes);
  // Unwritten slots are never read (attention reads [0, n_kv) of each table), but a
  // defined value keeps a bug visible as zeros rather than as garbage.
  TESSERA_CUDA_CHECK(cudaMemsetAsync(k_cache_.get(), 0, cache_bytes, stream_.get()));
  TESSERA_CUDA_CHECK(cudaMemsetAsync(v_cache_.get(), 0, cache_bytes, stream_.get()));
}

CudaLlamaModel::~CudaLlamaModel() {
  if (graph_) cudaGraphExecDestroy(graph_);
}

void CudaLlamaModel::set_use_graphs(bool on) {
  use_graphs_ = on;
  if (!on || decode_staging_) return;
  decode_max_blocks_ = (config_.max_seq_len + kv_.block_size - 1) / kv_.block_size;
  const size_t bytes = 24 + static_cast<size_t>(decode_max_blocks_) * 4;
  void* p = nullptr;
  TESSERA_CUDA_CHECK(cudaMallocHost(&p, bytes));
  decode_staging_.reset(static_cast<uint8_t*>(p));
  decode_meta_ = kc::DeviceBuffer(bytes);
}

float* CudaLlamaModel::kv_layer(kc::DeviceBuffer& cache, int64_t layer) const {
  return cache.as<float>() + layer * kv_.n_blocks * kv_.block_floats();
}

void CudaLlamaModel::ensure_capacity(int64_t n_tok, int64_t n_out, int64_t n_table) {
  const ModelConfig& c = config_;
  const size_t meta = static_cast<size_t>((2 * n_tok + n_out + n_table) * 4 + 8 + n_tok * 8);
  if (meta > staging_bytes_ || n_tok > cap_tok_ || n_out > cap_out_) stream_.synchronize();  // buffers in use
  if (meta > staging_bytes_) {
    const size_t bytes = meta * 2;
    void* p = nullptr;
    TESSERA_CUDA_CHECK(cudaMallocHost(&p, bytes));
    staging_.reset(static_cast<uint8_t*>(p));
    meta_ = kc::DeviceBuffer(bytes);
    staging_bytes_ = bytes;
  }
  if (n_tok > cap_tok_) {
    const int64_t n = std::max(n_tok, 2 * cap_tok_);
    const int64_t ffn = c.ffn_dim;
    auto f32 = [](int64_t count) { return kc::DeviceBuffer(static_cast<size_t>(count) * sizeof(float)); };
    x_ = f32(n * c.dim);
    xn_ = f32(n * c.dim);
    qkv_ = f32(n * (c.q_dim() + 2 * c.kv_dim()));
    att_ = f32(n * c.q_dim());
    proj_ = f32(n * c.dim);
    gu_ = f32(n * 2 * ffn);
    hidden_ = f32(n * ffn);
    ++buffers_gen_;
    cap_tok_ = n;
  }
  if (n_out > cap_out_) {
    const int64_t n = std::max(n_out, 2 * cap_out_);
    logits_ = kc::DeviceBuffer(static_cast<size_t>(n * c.vocab_size) * sizeof(float));
    ids_ = kc::DeviceBuffer(static_cast<size_t>(n) * sizeof(int32_t));
    ++buffers_gen_;
    cap_out_ = n;
  }
}

void CudaLlamaModel::validate(std::span<const ForwardSequence> batch, int64_t& n_tok, int64_t& n_out,
                              int64_t& n_table) const {
  const ModelConfig& c = config_;
  n_tok = 0, n_out = 0, n_table = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    TESSERA_REQUIRE(s.pos0 >= 0 && s.pos0 + n <= c.max_seq_len, ErrorKind::kInvalidInput, "sequence of ", s.pos0 + n,
                    " tokens exceeds the model's context of ", c.max_seq_len);
    TESSERA_REQUIRE(s.n_outputs >= 0 && s.n_outputs <= n, ErrorKind::kInternal, "n_outputs ", s.n_outputs,
                    " out of range");
    TESSERA_REQUIRE(static_cast<int64_t>(s.block_table.size()) * kv_.block_size >= s.pos0 + n, ErrorKind::kInternal,
                    "block table too short for the sequence");
    for (const int32_t b : s.block_table)
      TESSERA_REQUIRE(b >= 0 && b < kv_.n_blocks, ErrorKind::kInternal, "block id ", b, " outside the cache of ",
                      kv_.n_blocks, " blocks");
    for (const int32_t tok : s.tokens)
      TESSERA_REQUIRE(tok >= 0 && tok < c.vocab_size, ErrorKind::kInvalidInput, "token id ", tok,
                      " is outside the vocabulary of ", c.vocab_size);
    n_tok += n;
    n_out += s.n_outputs;
    n_table += static_cast<int64_t>(s.block_table.size());
  }
}

int64_t CudaLlamaModel::enqueue(std::span<const ForwardSequence> batch) {
  if (use_graphs_ && batch.size() == 1 && batch[0].tokens.size() == 1 && batch[0].n_outputs == 1)
    return enqueue_decode_graph(batch[0]);
  int64_t n_tok = 0, n_out = 0, n_table = 0;
  validate(batch, n_tok, n_out, n_table);
  n_tok_ = n_tok;
  if (n_tok == 0) return 0;
  ensure_capacity(n_tok, n_out, n_table);

  // Stage the step's metadata once the previous step's copy out of staging_ is done.
  staged_.synchronize();
  uint8_t* h = staging_.get();
  auto* tokens = reinterpret_cast<int32_t*>(h);
  int32_t* pos = tokens + n_tok;
  int32_t* out_rows = pos + n_tok;
  int32_t* tables = out_rows + n_out;
  const size_t slots_off = (static_cast<size_t>(2 * n_tok + n_out + n_table) * 4 + 7) / 8 * 8;
  auto* slots = reinterpret_cast<int64_t*>(h + slots_off);
  const size_t meta_bytes = slots_off + static_cast<size_t>(n_tok) * 8;
  table_offset_.clear();
  int64_t t = 0, o = 0, tb = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    table_offset_.push_back(tb);
    for (int64_t i = 0; i < n; ++i, ++t) {
      const int64_t p = s.pos0 + i;
      tokens[t] = s.tokens[i];
      pos[t] = static_cast<int32_t>(p);
      slots[t] = int64_t{s.block_table[p / kv_.block_size]} * kv_.block_size + p % kv_.block_size;
      if (i >= n - s.n_outputs) out_rows[o++] = static_cast<int32_t>(t);
    }
    std::memcpy(tables + tb, s.block_table.data(), s.block_table.size() * 4);
    tb += static_cast<int64_t>(s.block_table.size());
  }
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(meta_.get(), h, meta_bytes, cudaMemcpyHostToDevice, stream_.get()));
  staged_.record(stream_.get());
  const auto* dm = meta_.as<uint8_t>();
  d_tokens_ = reinterpret_cast<const int32_t*>(dm);
  d_pos_ = d_tokens_ + n_tok;
  d_out_rows_ = d_pos_ + n_tok;
  d_tables_ = d_out_rows_ + n_out;
  d_slots_ = reinterpret_cast<const int64_t*>(dm + slots_off);
  run_step(batch, n_out);
  return n_out;
}

int64_t CudaLlamaModel::enqueue_decode_graph(const ForwardSequence& s) {
  int64_t n_tok = 0, n_out = 0, n_table = 0;
  validate(std::span<const ForwardSequence>(&s, 1), n_tok, n_out, n_table);
  ensure_capacity(1, 1, 0);
  n_tok_ = 1;
  const int64_t pos = s.pos0;
  const int64_t needed = pos / kv_.block_size + 1;  // table entries covering [0, pos]
  CHECK_LE(needed, decode_max_blocks_);             // validate() bounds pos by max_seq_len
  staged_.synchronize();
  uint8_t* h = decode_staging_.get();
  reinterpret_cast<int32_t*>(h)[0] = s.tokens[0];
  reinterpret_cast<int32_t*>(h)[1] = static_cast<int32_t>(pos);
  reinterpret_cast<int32_t*>(h)[2] = 0;
  reinterpret_cast<int32_t*>(h)[3] = static_cast<int32_t>(pos + 1);
  reinterpret_cast<int64_t*>(h + 16)[0] = int64_t{s.block_table[pos / kv_.block_size]} * kv_.block_size +
                                          pos % kv_.block_size;
  std::memcpy(h + 24, s.block_table.data(), static_cast<size_t>(needed) * 4);
  cudaStream_t st = stream_.get();
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(decode_meta_.get(), h, 24 + static_cast<size_t>(needed) * 4,
                                     cudaMemcpyHostToDevice, st));
  staged_.record(st);
  const auto* dm = decode_meta_.as<uint8_t>();
  d_tokens_ = reinterpret_cast<const int32_t*>(dm);
  d_pos_ = d_tokens_ + 1;
  d_out_rows_ = d_tokens_ + 2;
  d_n_kv_ = d_tokens_ + 3;
  d_slots_ = reinterpret_cast<const int64_t*>(dm + 16);
  d_tables_ = reinterpret_cast<const int32_t*>(dm + 24);
  table_offset_.assign(1, 0);
  graph_mode_ = true;
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{graph_mode_};
  if (graph_ && graph_gen_ == buffers_gen_) {
    TESSERA_CUDA_CHECK(cudaGraphLaunch(graph_, st));
    ++graph_replays_;
    return 1;
  }
  // This step runs uncaptured (it also leaves the pool holding every scratch block the
  // step needs, so the capture below allocates nothing), then is captured for the next.
  run_step(std::span<const ForwardSequence>(&s, 1), 1);
  if (graph_) {
    TESSERA_CUDA_CHECK(cudaGraphExecDestroy(graph_));
    graph_ = nullptr;
  }
  TESSERA_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeRelaxed));
  cudaGraph_t g = nullptr;
  try {
    run_step(std::span<const ForwardSequence>(&s, 1), 1);
  } catch (...) {
    cudaStreamEndCapture(st, &g);
    if (g) cudaGraphDestroy(g);
    throw;
  }
  TESSERA_CUDA_CHECK(cudaStreamEndCapture(st, &g));
  const cudaError_t e = cudaGraphInstantiate(&graph_, g, 0);
  cudaGraphDestroy(g);
  TESSERA_CUDA_CHECK(e);
  graph_gen_ = buffers_gen_;
  return 1;
}

void CudaLlamaModel::run_step(std::span<const ForwardSequence> batch, int64_t n_out) {
  const ModelConfig& c = config_;
  const int64_t n_tok = n_tok_;
  cudaStream_t st = stream_.get();
  kc::embedding(w_.token_embd.dtype, w_.token_embd.data, w_.token_embd.rows, c.dim, w_.token_embd.row_stride,
                d_tokens_, n_tok, c.embedding_scale, x_.as<float>(), st);
  kc::rmsnorm(x_.as<float>(), w_.layers[0].attn_norm, xn_.as<float>(), n_tok, c.dim, c.norm_eps, st);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    attention_block(l, batch);
    ffn_block(l, l + 1 < c.n_layers ? w_.layers[l + 1].attn_norm : w_.output_norm);
  }
  if (n_out == 0) return;
  // xn_ now holds output_norm(x) of every row: the LM head takes the output rows.
  kc::gather_rows(xn_.as<float>(), d_out_rows_, n_out, c.dim, proj_.as<float>(), st);
  gemm_.matmul(w_.output, proj_.as<float>(), n_out, logits_.as<float>());
}

void CudaLlamaModel::matmul_parts(const kc::DeviceMatrix& fused, std::initializer_list<const kc::DeviceMatrix*> parts,
                                  const float* x, float* y) {
  int64_t width = 0;
  for (const kc::DeviceMatrix* p : parts) width += p->rows;
  if (fused.data) {
    gemm_.matmul(fused, x, n_tok_, y);
    return;
  }
  int64_t col = 0;
  for (const kc::DeviceMatrix* p : parts) {
    gemm_.matmul(*p, x, n_tok_, y + col, 0, width);  // y rows are `width` floats apart
    col += p->rows;
  }
}

void CudaLlamaModel::attention_block(int64_t l, std::span<const ForwardSequence> batch) {
  const ModelConfig& c = config_;
  const CudaLlamaLayerWeights& lw = w_.layers[l];
  const int64_t n_tok = n_tok_;
  const int64_t qkv_w = c.q_dim() + 2 * c.kv_dim();
  cudaStream_t st = stream_.get();
  float* qkv = qkv_.as<float>();
  matmul_parts(lw.wqkv, {&lw.wq, &lw.wk, &lw.wv}, xn_.as<float>(), qkv);
  // q and k heads are adjacent in a qkv row: one RoPE launch rotates both.
  kc::rope(qkv, n_tok, c.n_heads + c.n_kv_heads, c.head_dim, c.rope_dim, d_pos_, inv_freq_.as<float>(), c.rope_layout,
           qkv_w, st);
  // Append K/V at the step's slots; a cache row is one token's [n_kv_heads][head_dim].
  kc::append_kv(qkv, qkv_w, c.q_dim(), c.q_dim() + c.kv_dim(), d_slots_, n_tok, c.kv_dim(), kv_layer(k_cache_, l),
                kv_layer(v_cache_, l), st);

  int64_t t0 = 0;
  size_t i = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    kc::DeviceAttentionArgs a;
    a.q = qkv + t0 * qkv_w;
    a.q_stride = qkv_w;
    a.n_q = n;
    a.n_heads = c.n_heads;
    a.n_kv_heads = c.n_kv_heads;
    a.head_dim = c.head_dim;
    a.k_cache = kv_layer(k_cache_, l);
    a.v_cache = kv_layer(v_cache_, l);
    a.block_table = d_tables_ + table_offset_[i++];
    a.block_size = kv_.block_size;
    a.n_kv = s.pos0 + n;
    a.q_pos0 = s.pos0;
    if (graph_mode_) {  // the length comes from the device; size the split for the longest
      a.n_kv = decode_max_blocks_ * kv_.block_size;
      a.n_kv_dev = d_n_kv_;
    }
    a.kv_pos0 = 0;
    a.causal = true;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    a.out = att_.as<float>() + t0 * c.q_dim();
    if (n > 0) kc::attention(a, pool_, sm_count_, st);
    t0 += n;
  }
  gemm_.matmul(lw.wo, att_.as<float>(), n_tok, proj_.as<float>());
  kc::add_rmsnorm(x_.as<float>(), proj_.as<float>(), lw.ffn_norm, xn_.as<float>(), n_tok, c.dim, c.norm_eps, st);
}

void CudaLlamaModel::ffn_block(int64_t l, const float* next_norm) {
  const ModelConfig& c = config_;
  const CudaLlamaLayerWeights& lw = w_.layers[l];
  const int64_t n_tok = n_tok_;
  cudaStream_t st = stream_.get();
  const int64_t n = n_tok * c.ffn_dim;
  const float* hidden = hidden_.as<float>();  // [T][ffn_dim] input of the down projection
  switch (c.ffn) {
    case FfnKind::kSwiGlu:
    case FfnKind::kGeGlu:
      matmul_parts(lw.w_gate_up, {&lw.w_gate, &lw.w_up}, xn_.as<float>(), gu_.as<float>());
      kc::gated_act_rows(gu_.as<float>(), n_tok, c.ffn_dim, c.ffn == FfnKind::kGeGlu, hidden_.as<float>(), st);
      break;
    case FfnKind::kGelu:
    case FfnKind::kSilu:
      gemm_.matmul(lw.w_up, xn_.as<float>(), n_tok, gu_.as<float>());
      if (c.ffn == FfnKind::kGelu)
        kc::gelu(gu_.as<float>(), n, st);
      else
        kc::silu(gu_.as<float>(), n, st);
      hidden = gu_.as<float>();
      break;
  }
  gemm_.matmul(lw.w_down, hidden, n_tok, proj_.as<float>());
  kc::add_rmsnorm(x_.as<float>(), proj_.as<float>(), next_norm, xn_.as<float>(), n_tok, c.dim, c.norm_eps, st);
}

void CudaLlamaModel::forward(std::span<const ForwardSequence> batch, float* logits) {
  const int64_t n_out = enqueue(batch);
  if (n_out > 0 && logits)
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(logits, logits_.get(), static_cast<size_t>(n_out * config_.vocab_size) * 4,
                                       cudaMemcpyDeviceToHost, stream_.get()));
  stream_.synchronize();
}

std::vector<int32_t> CudaLlamaModel::forward_greedy(std::span<const ForwardSequence> batch) {
  const int64_t n_out = enqueue(batch);
  std::vector<int32_t> ids(static_cast<size_t>(n_out));
  if (n_out > 0) {
    kc::argmax_rows(logits_.as<float>(), n_out, config_.vocab_size, ids_.as<int32_t>(), stream_.get());
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(ids.data(), ids_.get(), ids.size() * 4, cudaMemcpyDeviceToHost, stream_.get()));
  }
  stream_.synchronize();
  return ids;
}

}  // namespace tessera
