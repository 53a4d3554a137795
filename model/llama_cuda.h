// The dense decoder (model/llama.h) on one CUDA device: same step interface and the
// same math, with weights, activations and the paged KV cache in device memory.
//
// One instance = one whole model on one GPU (no TP/PP yet: TODO(dist), the NCCL
// communicator exists in collectives/). All work of a step is enqueued on the model's
// stream; forward() synchronises once, when the logits (or greedy ids) are copied back.
// Activations are f32 like the CPU path; F16/BF16 weights round the activations to the
// weight type before the product (kernels/cuda/gemm.h).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream.h"
#include "model/kv_cache.h"
#include "model/llama_cuda_weights.h"
#include "model/model.h"

namespace tessera {

class CudaLlamaModel {
 public:
  // `kv` gives the device cache: the same shape a host KvCache would have (n_layers and
  // n_kv_heads must be the model's). The device must be selected already.
  CudaLlamaModel(ModelConfig config, CudaLlamaWeights weights, const KvCacheShape& kv);
  ~CudaLlamaModel();
  CudaLlamaModel(const CudaLlamaModel&) = delete;
  CudaLlamaModel& operator=(const CudaLlamaModel&) = delete;

  // Decode steps (one sequence, one new token, one output) replay a captured CUDA graph
  // of the whole step: the token, position, slot, block table and context length are
  // read from device memory, so one graph serves every decode step (it is re-captured
  // only when activation buffers grow). The first decode step runs uncaptured, then is
  // captured. Off by default.
  void set_use_graphs(bool on);
  int64_t graph_replays() const { return graph_replays_; }  // decode steps served by a replay

  const ModelConfig& config() const { return config_; }
  const KvCacheShape& kv_shape() const { return kv_; }
  const CudaLlamaWeights& weights() const { return w_; }

  // As DecoderModel::forward: appends the batch's K/V to the device cache at the block
  // tables' slots and writes logits [sum of n_outputs][vocab] to host memory `logits`
  // (may be null: nothing is copied back, e.g. a prefill chunk with no outputs).
  void forward(std::span<const ForwardSequence> batch, float* logits);
  // Same, but returns the greedy (argmax) token of each output row; only the ids cross
  // to the host.
  std::vector<int32_t> forward_greedy(std::span<const ForwardSequence> batch);

  // Enqueues the step without waiting (benchmarks time it with events); the logits of
  // the output rows stay in device memory (device_logits()).
  int64_t enqueue(std::span<const ForwardSequence> batch);
  const float* device_logits() const { return logits_.as<float>(); }
  cudaStream_t stream() const { return stream_.get(); }
  void synchronize() const { stream_.synchronize(); }

 private:
  void ensure_capacity(int64_t n_tok, int64_t n_out, int64_t n_table);
  // Validates the batch (tessera::Error naming what is wrong); returns T, outputs, table entries.
  void validate(std::span<const ForwardSequence> batch, int64_t& n_tok, int64_t& n_out, int64_t& n_table) const;
  // Enqueues embedding .. LM head with the metadata pointers set (d_tokens_ ...).
  void run_step(std::span<const ForwardSequence> batch, int64_t n_out);
  int64_t enqueue_decode_graph(const ForwardSequence& s);
  // Each block starts from xn_ = norm(x_) and ends with x_ += its output and xn_ =
  // next_norm(x_) (fused), so a layer is 10 launches at decode.
  void attention_block(int64_t layer, std::span<const ForwardSequence> batch);
  void ffn_block(int64_t layer, const float* next_norm);
  // y [T][rows of all parts] from separate matrices when they could not be fused.
  void matmul_parts(const kernels::cuda::DeviceMatrix& fused, std::initializer_list<const kernels::cuda::DeviceMatrix*> parts,
                    const float* x, float* y);
  float* kv_layer(kernels::cuda::DeviceBuffer& cache, int64_t layer) const;

  ModelConfig config_;
  CudaLlamaWeights w_;
  KvCacheShape kv_;
  int sm_count_ = 0;
  kernels::cuda::Stream stream_;
  kernels::cuda::DevicePool pool_;
  kernels::cuda::Gemm gemm_;
  kernels::cuda::DeviceBuffer inv_freq_;  // [rope_dim / 2] RoPE frequencies (kernels/cuda/elementwise.h)
  kernels::cuda::DeviceBuffer k_cache_, v_cache_;  // [n_layers][n_blocks][block_size][n_kv_heads][head_dim]

  // Step metadata, staged in pinned host memory and copied in one transfer:
  // tokens [T] i32 | pos [T] i32 | out_rows [n_out] i32 | block tables (concatenated)
  // i32 | pad to 8 | slots [T] i64. staged_ marks the end of the last copy out of it.
  struct PinnedDeleter {
    void operator()(void* p) const;
  };
  std::unique_ptr<uint8_t, PinnedDeleter> staging_;
  size_t staging_bytes_ = 0;
  kernels::cuda::Event staged_{false};
  kernels::cuda::DeviceBuffer meta_;
  const int32_t* d_tokens_ = nullptr;
  const int32_t* d_pos_ = nullptr;
  const int32_t* d_out_rows_ = nullptr;
  const int32_t* d_tables_ = nullptr;
  const int64_t* d_slots_ = nullptr;
  std::vector<int64_t> table_offset_;  // per sequence of the step, into d_tables_

  // CUDA-graph decode (set_use_graphs): its own metadata block, [0] token, [4] position,
  // [8] output row (0), [12] context length, [16] slot (i64), [24] block table (i32).
  bool use_graphs_ = false;
  bool graph_mode_ = false;               // run_step is enqueuing the graph-shaped decode step
  cudaGraphExec_t graph_ = nullptr;
  uint64_t buffers_gen_ = 0;              // bumped whenever an activation buffer moves
  uint64_t graph_gen_ = ~uint64_t{0};     // buffers_gen_ the graph was captured with
  int64_t decode_max_blocks_ = 0;         // table entries of the longest context (max_seq_len)
  std::unique_ptr<uint8_t, PinnedDeleter> decode_staging_;
  kernels::cuda::DeviceBuffer decode_meta_;
  const int32_t* d_n_kv_ = nullptr;
  int64_t graph_replays_ = 0;

  // Activations, grown to the largest step seen.
  int64_t cap_tok_ = 0, cap_out_ = 0;
  int64_t n_tok_ = 0;
  // f32: x_, xn_, proj_ [T][dim]; qkv_ [T][q_dim + 2 kv_dim] (q | k | v of a token side
  // by side, the fused product's output); att_ [T][q_dim]; gu_ [T][2 ffn_dim] (gate | up;
  // plain FFNs use the first ffn_dim); hidden_ [T][ffn_dim].
  kernels::cuda::DeviceBuffer x_, xn_, qkv_, att_, proj_, gu_, hidden_;
  kernels::cuda::DeviceBuffer logits_;  // [n_out][vocab] f32
  kernels::cuda::DeviceBuffer ids_;     // [n_out] i32
};

}  // namespace tessera
