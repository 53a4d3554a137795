// Plain scalar reference of every op in kernels/ops.h (namespace ref).
//
// Written for obviousness, not speed: sums in double, attention as a full softmax in
// double. The tests compare the optimised paths against these; the kScalar dispatch
// level runs them too (threaded over rows where ops.h takes a pool).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/ops.h"

namespace tessera::kernels::ref {

// y rows [r0, r1) of y [n][w.rows] = x [n][w.cols] . W^T (dequantise, sum in double).
void matmul_rows(const WeightMatrix& w, const float* x, int64_t n, float* y, int64_t x_stride,
                 int64_t y_stride, int64_t r0, int64_t r1);
void matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, int64_t x_stride = 0,
            int64_t y_stride = 0);

void dequantize_row(DType t, const void* src, float* out, int64_t n);
void quantize_row(DType t, const float* src, void* dst, int64_t n);

void rmsnorm(const float* x, const float* w, float* out, int64_t n_rows, int64_t dim, float eps);
void rope(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
          const int32_t* pos, float theta, RopeLayout layout);
void softmax(float* x, int64_t n_rows, int64_t n);
void silu_mul(float* gate, const float* up, int64_t n);
void gelu_mul(float* gate, const float* up, int64_t n);
void silu(float* x, int64_t n);
void gelu(float* x, int64_t n);
void add_inplace(float* y, const float* x, int64_t n);

// Query rows [t0, t1) only (the full op is t0 = 0, t1 = n_q).
void attention_rows(const AttentionArgs& a, int64_t t0, int64_t t1);
void attention(const AttentionArgs& a);
void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b,
                     int64_t n_rows, int64_t dim);

// The rotation angle of pair i at position pos. Part of the op's definition and shared
// by every path, computed in f32 exactly as llama2.c and Hugging Face do
// (inv_freq = 1 / theta^(2i/rot_dim) in f32, angle = pos * inv_freq in f32), so that
// logits match those references; the rotation itself is then exact per path.
inline float rope_inv_freq(int64_t i, int64_t rot_dim, float theta) {
  return 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rot_dim));
}

}  // namespace tessera::kernels::ref
