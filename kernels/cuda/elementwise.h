// Device versions of the element-wise ops of kernels/ops.h, with the same semantics
// (f32 activations; the tests compare each with kernels/reference.h). All pointers are
// device pointers; every call is enqueued on `s` and returns at once.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/ops.h"

namespace tessera::kernels::cuda {

// out[r][i] = x[r][i] / sqrt(mean(x[r]^2) + eps) * w[i]   (x, out [n_rows][dim])
void rmsnorm(const float* x, const float* w, float* out, int64_t n_rows, int64_t dim, float eps, cudaStream_t s);

// In place on x [n_tok][n_heads][head_dim] at positions pos [n_tok] (device), as ops.h.
// inv_freq [rot_dim / 2] (device) holds ref::rope_inv_freq(i, rot_dim, theta), computed
// on the host (rope_inv_freq_table) so the angles are the reference's bit for bit: a
// device powf may differ by an ulp, which at position 4096 moves the angle by 1e-4.
// token_stride: floats between tokens (0 = n_heads * head_dim); with the fused QKV
// activations [T][q | k | v] one call rotates the q and k heads together.
void rope(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const int32_t* pos,
          const float* inv_freq, RopeLayout layout, int64_t token_stride, cudaStream_t s);
std::vector<float> rope_inv_freq_table(int64_t rot_dim, float theta);

// x[r] += delta[r]; out[r] = rmsnorm(x[r]) * w: the residual add that ends a block fused
// with the norm that starts the next (one pass over the row instead of two launches).
void add_rmsnorm(float* x, const float* delta, const float* w, float* out, int64_t n_rows, int64_t dim, float eps,
                 cudaStream_t s);

// In-place softmax over n_rows rows of n floats.
void softmax(float* x, int64_t n_rows, int64_t n, cudaStream_t s);

void silu_mul(float* gate, const float* up, int64_t n, cudaStream_t s);
void gelu_mul(float* gate, const float* up, int64_t n, cudaStream_t s);
void silu(float* x, int64_t n, cudaStream_t s);
void gelu(float* x, int64_t n, cudaStream_t s);
void add_inplace(float* y, const float* x, int64_t n, cudaStream_t s);

// out[t][i] = act(gu[t][i]) * gu[t][width + i] for n_rows rows of gu [n_rows][2 * width]
// (the fused gate | up activations): SwiGLU (gelu = false) or GeGLU (gelu = true).
void gated_act_rows(const float* gu, int64_t n_rows, int64_t width, bool gelu, float* out, cudaStream_t s);

// dst[i] = f32 src[i] rounded (RNE) to `t` (F16 or BF16): the activation operand of a
// half-precision GEMM.
void convert_f32(const float* src, void* dst, DType t, int64_t n, cudaStream_t s);

// out[t][:] = scale * dequantised row ids[t] of table [rows][cols] (row_stride bytes
// apart; F32, F16, BF16 or Q8_0), for n_ids ids (device). Ids outside [0, rows) give a
// zero row (callers validate ids on the host first; vocab-parallel shards rely on it).
void embedding(DType t, const void* table, int64_t rows, int64_t cols, int64_t row_stride, const int32_t* ids,
               int64_t n_ids, float scale, float* out, cudaStream_t s);

// dst[i] = src[rows[i]] for n_rows rows of `cols` floats (rows: device indices).
void gather_rows(const float* src, const int32_t* rows, int64_t n_rows, int64_t cols, float* dst, cudaStream_t s);

// dst[slots[t]] = src[t] for n rows of `cols` floats: appends K or V of the step's
// tokens to a paged cache (slot = block id * block_size + offset in the block).
void scatter_rows(const float* src, const int64_t* slots, int64_t n, int64_t cols, float* dst, cudaStream_t s);

// Appends the step's K and V to a paged cache in one launch: for token t of qkv
// [n][stride] (K at column k_col, V at v_col, width cols each), k_dst[slots[t]] and
// v_dst[slots[t]] (rows of `cols` floats) receive them.
void append_kv(const float* qkv, int64_t stride, int64_t k_col, int64_t v_col, const int64_t* slots, int64_t n,
               int64_t cols, float* k_dst, float* v_dst, cudaStream_t s);

}  // namespace tessera::kernels::cuda
