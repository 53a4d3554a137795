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

// y rows [r0, r1) of y [n][w.rows] = x [n][w.cols] . W^T, sums in double, with the
// activation operand rounded as llama.cpp's CPU backend rounds it (its "vec_dot_type"):
//   F32: x as is.   F16 / BF16: x rounded to fp16 / bf16 when w.act_rounding is
//   kWeightType (GGUF), x as is for kNone (the default; HF safetensors semantics).
//   Q8_0 / Q4_0: x quantised per 32-block (quantize_act_block), then per block
//                fp16(d_w) * fp16(d_x) * sum(q_w q_x)  (Q4_0: q_w - 8)
//   Q4_1:        x as Q8_1: fp16(d_w) * fp16(d_x) * sum(q_w q_x) + m_w * s_x, summed in
//                f32 in exactly llama.cpp's order (q4_1_dot_ggml_order), not in double
// so every path matches llama.cpp up to f32 summation order (Q4_1: bit for bit).
void matmul_rows(const WeightMatrix& w, const float* x, int64_t n, float* y, int64_t x_stride,
                 int64_t y_stride, int64_t r0, int64_t r1);
void matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, int64_t x_stride = 0,
            int64_t y_stride = 0);

void dequantize_row(DType t, const void* src, float* out, int64_t n);

// One output of a Q4_1 matmul, bit for bit as the x86 (AVX2) ggml_vec_dot_q4_1_q8_1 of
// llama.cpp computes it, over nb blocks of w and of x (q: 32 int8 per block, xd =
// fp16(d_x), xs = s_x as f32): per block 8 int32 lanes (lane l = elements 4l..4l+3, where
// elements 0-15 are the low nibbles of qs[0..15] and 16-31 the high ones),
// acc[l] = fma(fp16(d_w) * d_x, float(lane), acc[l]); summs = fma(m_w, s_x, summs); then
// the 8 lanes are reduced as hsum_float_8 does and summs is added last. The m_w s_x term
// nearly cancels sum(d q q), so its f32 rounding is ~1e-5 of |y| and any other order
// differs from llama.cpp by that much - enough to flip a downstream Q8_1 rounding.
float q4_1_dot_ggml_order(const BlockQ4_1* w, const int8_t* xq, const float* xd, const float* xs,
                          int64_t nb);

// One 32-block of activations as llama.cpp's x86 quantize_row_q8_0 / q8_1 quantise it:
// d = amax / 127, q = round-half-even(x * (127 / amax)) (0 when amax == 0);
// *d_out = fp16(d) as f32 (the scale the dot uses), *s_out = fp16(d * sum(q)) as f32
// (Q8_1's s; the d in it is the unrounded f32 d).
void quantize_act_block(const float* x, int8_t* q, float* d_out, float* s_out);

// x rounded to the activation type of a matmul on F16 / BF16 weights (RNE); others: x.
float round_act(DType wt, float x);

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

// ---- linear-recurrent ops (kernels/recurrent.h), in double, token by token ----
namespace tessera::kernels::ref {
void conv1d_causal(const float* x, int64_t x_stride, const float* w, const float* b, float* state, float* out,
                   int64_t n_tok, int64_t channels, int64_t taps);
void rglru_coefficients(float* gate_a, float* gate_x, float* x, const float* softplus_lambda, const uint8_t* reset,
                        int64_t n_tok, int64_t channels);
void rglru_scan(const float* a, const float* u, float* h, float* out, int64_t n_tok, int64_t channels);
}  // namespace tessera::kernels::ref
