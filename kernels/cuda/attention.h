// Blocked online-softmax attention on the device over a paged KV cache, returning the
// log-sum-exp of every (query, head) row: the device form of kernels::attention
// (kernels/ops.h), same semantics (causal, sliding window, softcap, GQA/MQA).
//
// One kernel serves prefill and decode. A thread block owns one KV head and 16 rows of
// (query token, query head of that KV head's group): K/V tiles of 32 tokens are loaded
// once into shared memory for the whole group (GQA reuse). When that gives too few
// blocks to fill the GPU (decode: one token, a handful of KV heads) the KV range is
// split over more blocks (flash-decoding) and the partial results are merged with
// their log-sum-exps, the same exact merge as kernels::merge_attention.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_buffer.h"

namespace tessera::kernels::cuda {

struct DeviceAttentionArgs {
  const float* q = nullptr;       // [n_q][q_stride]; head h at q + t*q_stride + h*head_dim
  int64_t q_stride = 0;           // 0 = n_heads*head_dim
  int64_t n_q = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;           // <= 256
  // The layer's cache: block b of K at k_cache + b*block_stride floats, laid out
  // [block_size][n_kv_heads][head_dim] (model/kv_cache.h); likewise V.
  const float* k_cache = nullptr;
  const float* v_cache = nullptr;
  const int32_t* block_table = nullptr;  // device; entry i holds KV tokens [i*block_size, (i+1)*block_size)
  int64_t block_size = 0;
  int64_t block_stride = 0;       // 0 = block_size*n_kv_heads*head_dim
  int64_t n_kv = 0;
  int64_t q_pos0 = 0;
  int64_t kv_pos0 = 0;
  bool causal = true;
  int64_t window = 0;
  float scale = 0;
  float softcap = 0;
  float* out = nullptr;           // [n_q][out_stride]
  int64_t out_stride = 0;         // 0 = n_heads*head_dim
  float* lse = nullptr;           // optional [n_q][n_heads]; -inf where a row saw no KV
  // CUDA-graph replays: when set, the kernels read the context length from here (device
  // memory) and take the queries as its last n_q positions (q_pos0 = kv_pos0 + n_kv -
  // n_q); n_kv above is then an upper bound that only sizes the KV split.
  const int32_t* n_kv_dev = nullptr;
};

// Enqueues the attention on `s`. `pool` provides the split scratch (freed back to the
// pool at once: safe, as everything runs in the order of the one stream). sm_count
// sizes the KV split (0 = never split).
void attention(const DeviceAttentionArgs& a, DevicePool& pool, int sm_count, cudaStream_t s);

// As kernels::merge_attention, on the device: (out_a, lse_a) absorbs (out_b, lse_b).
void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b, int64_t n_rows,
                     int64_t dim, cudaStream_t s);

}  // namespace tessera::kernels::cuda
