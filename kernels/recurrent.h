// Ops of linear-recurrent models (Griffin / RecurrentGemma, docs/RECURRENT_GEMMA.md):
// the causal depthwise temporal convolution and the RG-LRU's gated linear recurrence.
// Plain references live in kernels/reference.h (ref::conv1d_causal, ref::rglru_*),
// compared with these by tests/kernels/recurrent_test.cpp.
//
// Both are per channel, so a tensor-parallel shard of channels runs them unchanged.
#pragma once

#include <cstdint>

#include "kernels/thread_pool.h"

namespace tessera::kernels {

// Causal depthwise convolution over time, K taps per channel, with a carried state:
//   out[t][c] = b[c] + sum_j w[c][j] * x(t - (K-1) + j)[c]
// where x(p) for p < 0 is state[K-1 + p][c] (the K-1 inputs before this call, oldest
// first; zeros at the start of a sequence). w [C][K] is Hugging Face's Conv1d weight
// [C][1][K] (tap K-1 multiplies the current input). On return state holds the last
// K-1 inputs (of x, or older state rows when T < K-1).
//   x [T][C] (rows x_stride floats apart, 0 = C), out [T][C] (may not alias x),
//   state [K-1][C].
void conv1d_causal(ThreadPool& pool, const float* x, int64_t x_stride, const float* w, const float* b,
                   float* state, float* out, int64_t n_tok, int64_t channels, int64_t taps);

// The RG-LRU's gates turned into the recurrence's coefficients, elementwise, in place:
//   r = sigmoid(gate_a), i = sigmoid(gate_x)
//   log a = -8 r softplus(lambda)             (softplus_lambda[c] = softplus(lambda[c]))
//   a_t = exp(log a);  u_t = x_t * i * sqrt(1 - exp(2 log a))
//   at position 0 (reset[t] true): a_t = 0 and u_t = x_t * i (no normalisation).
// gate_a becomes a [T][C], x becomes u [T][C]; gate_x is scratch.
void rglru_coefficients(ThreadPool& pool, float* gate_a, float* gate_x, float* x, const float* softplus_lambda,
                        const uint8_t* reset, int64_t n_tok, int64_t channels);

// The linear recurrence h_t = a_t * h_{t-1} + u_t over T steps, per channel, in f32:
// h [C] is the state before the call and after it; out [T][C] gets every h_t.
// Chunked parallel scan: the T steps split into one chunk per thread, each scanned
// from zero while it also accumulates prod(a); the chunk carries are then combined in
// order and folded back in (out_t += prod(a_1..a_t within the chunk) * carry). It is a
// scan over time, not a token loop in the model: every channel and every chunk is
// independent work.
void rglru_scan(ThreadPool& pool, const float* a, const float* u, float* h, float* out, int64_t n_tok,
                int64_t channels);

}  // namespace tessera::kernels
