// The dense decoder's weights in device memory (model/llama_weights.h's layout, with
// device pointers): uploaded from the host views a checkpoint binds, or generated on
// the device at a real model's shapes for benchmarks (no multi-GB file needed).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm.h"
#include "model/config.h"
#include "model/llama_weights.h"

namespace tessera {

struct CudaLlamaLayerWeights {
  const float* attn_norm = nullptr;        // [dim]
  kernels::cuda::DeviceMatrix wq, wk, wv;  // [q_dim][dim], [kv_dim][dim] x 2
  // wq, wk, wv as one matrix [q_dim + 2 kv_dim][dim] (their rows are stored back to
  // back): one product per step instead of three. data == nullptr when their dtypes
  // differ (then wq/wk/wv are separate buffers).
  kernels::cuda::DeviceMatrix wqkv;
  kernels::cuda::DeviceMatrix wo;          // [dim][q_dim]
  const float* ffn_norm = nullptr;         // [dim]
  kernels::cuda::DeviceMatrix w_gate;      // [ffn_dim][dim] (absent for plain FFNs)
  kernels::cuda::DeviceMatrix w_up;        // [ffn_dim][dim]
  kernels::cuda::DeviceMatrix w_gate_up;   // [2 ffn_dim][dim] = gate rows then up rows, or data == nullptr
  kernels::cuda::DeviceMatrix w_down;      // [dim][ffn_dim]
};

struct CudaLlamaWeights {
  kernels::cuda::DeviceMatrix token_embd;  // [vocab][dim]
  std::vector<CudaLlamaLayerWeights> layers;
  const float* output_norm = nullptr;      // [dim]
  kernels::cuda::DeviceMatrix output;      // [vocab][dim] (the embedding's memory when tied)
  std::vector<kernels::cuda::DeviceBuffer> storage;  // owns everything above
  uint64_t bytes = 0;                      // device bytes of all weights
  uint64_t streamed_bytes = 0;             // bytes one decode step reads (all but the embedding
                                           // table, of which it reads one row, unless tied)
};

// Copies every matrix and vector of `w` (a whole, unsharded model) to the device; rows
// become contiguous. Throws tessera::Error(kUnsupported) naming the tensor for a dtype
// the device kernels lack (Q4_0, Q4_1).
CudaLlamaWeights upload_llama_weights(const ModelConfig& c, const LlamaWeights& w);

// Weights of config `c` drawn on the device: matrices uniform in +-1/sqrt(cols) stored
// as `t` (F32, F16 or BF16), norm weights 1. An untied LM head of its own.
CudaLlamaWeights random_llama_weights(const ModelConfig& c, DType t, uint64_t seed);

}  // namespace tessera
