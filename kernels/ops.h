// CPU ops: the kernel interface the model code calls.
//
// kernels/ knows no model and no rank: plain pointers, shapes, dtypes. Every op here
// has a plain scalar reference in kernels/reference.h and a test that compares them
// under a per-op tolerance (tests/kernels). Optimised paths (AVX2 / AVX-512 / AVX-512
// BF16) are chosen at run time from the CPU's features (kernels/cpu_features.h).
//
// Conventions: row-major; activations are f32; weights stay in their stored dtype and
// are accumulated in f32. "W [rows][cols]" means y = W x with x of length cols, the
// convention of llama2.c and of GGUF (ne[0] = cols is the contiguous dimension).
#pragma once

#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/thread_pool.h"

namespace tessera::kernels {

// How the activation operand of a matmul on F16 / BF16 weights is rounded.
//   kNone:       x stays f32 (Hugging Face / PyTorch semantics of a bf16/f16 checkpoint
//                run in f32, the default).
//   kWeightType: x is rounded to the weight type first (RNE), as llama.cpp's CPU backend
//                does (its vec_dot_type): the mode for GGUF checkpoints.
// Block-quantised weights (Q8_0, Q4_0, Q4_1) always quantise x like llama.cpp (Q8_0
// blocks; Q8_1 for Q4_1): see ref::matmul_rows. F32 weights never round x.
enum class ActRounding : uint8_t { kNone, kWeightType };

// How a matrix's bytes are arranged. kRows: row r at data + r * row_stride (every
// checkpoint format). kQ8Rows16: Q8_0 with 16 rows interleaved for the VNNI kernel
// (kernels/q8_packed.h; made at load for the int8 draft copy, only matmul reads it:
// it has no rows to slice, so row_stride is unused).
enum class WeightLayout : uint8_t { kRows, kQ8Rows16 };

// A weight matrix W [rows][cols] in any DType; row r starts at data + r * row_stride
// bytes. A tensor-parallel slice of rows is just a pointer offset; cols must be a
// multiple of dtype_block_elems(dtype).
struct WeightMatrix {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  int64_t row_stride = 0;  // bytes between rows; 0 means dtype_row_bytes(dtype, cols)
  ActRounding act_rounding = ActRounding::kNone;  // F16 / BF16 only, see above
  // Q4_1 only: add each dot in ggml_vec_dot_q4_1_q8_1's exact f32 order (bit-identical
  // to llama.cpp per matmul) instead of the fast AVX-512 order. Off by default: it
  // costs ~40% of Q4_1 speed and, because other ops still differ from ggml in the last
  // ulp, does not make whole-model logits equal llama.cpp's (docs/KERNELS.md).
  bool ggml_q41_order = false;
  WeightLayout layout = WeightLayout::kRows;
};

// True when matmul rounds x to w.dtype before the dot product (F16 / BF16 + kWeightType).
inline bool rounds_activations(const WeightMatrix& w) {
  return (w.dtype == DType::kF16 || w.dtype == DType::kBF16) &&
         w.act_rounding == ActRounding::kWeightType;
}

// y [n][w.rows] = x [n][w.cols] . W^T, for n >= 1 (n == 1 is the decode GEMV; larger n
// is prefill GEMM). x rows are x_stride floats apart (0 = w.cols), y rows y_stride
// (0 = w.rows). Threads split over rows of W (and tokens when that balances better).
void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n, float* y,
            int64_t x_stride = 0, int64_t y_stride = 0);

// out[i] = f32 value of element i of a run of n elements of dtype t starting at src
// (embedding rows, norm weights stored as F16/BF16, tests).
void dequantize_row(DType t, const void* src, float* out, int64_t n);

// Quantise f32 to a dtype (used to build test inputs and int8 draft copies).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], for each of n_rows rows of dim floats.
// (Gemma-style "1 + w" weights are folded at load by the model code.)
void rmsnorm(ThreadPool& pool, const float* x, const float* w, float* out, int64_t n_rows,
             int64_t dim, float eps);

// Rotary position embedding applied in place to x [n_tok][n_heads][head_dim] (token t
// at position pos[t]). Only the first rot_dim dims of each head rotate (partial RoPE);
// freq_i = theta^(-2i/rot_dim).
//   kInterleaved: pairs (x[2i], x[2i+1])        (llama2.c, GGUF "llama" after conversion)
//   kHalves:      pairs (x[i], x[i + rot_dim/2]) (Hugging Face / GPT-NeoX layout)
enum class RopeLayout { kInterleaved, kHalves };
void rope(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
          const int32_t* pos, float theta, RopeLayout layout);

// In-place softmax over each of n_rows rows of n floats.
void softmax(float* x, int64_t n_rows, int64_t n);

// gate[i] = silu(gate[i]) * up[i]  (SwiGLU); gelu variant uses the tanh approximation.
void silu_mul(float* gate, const float* up, int64_t n);
void gelu_mul(float* gate, const float* up, int64_t n);
void silu(float* x, int64_t n);
void gelu(float* x, int64_t n);

// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

// Blocked online-softmax attention (flash-attention style) that also returns the
// log-sum-exp of each (query, head) row, so partial results over disjoint KV sets
// (ring attention steps, KV shards) merge exactly with merge_attention().
//
// KV lives in fixed-size blocks of block_size tokens; block b holds KV tokens
// [b*block_size, (b+1)*block_size), each token laid out [n_kv_heads][head_dim].
// k_blocks[b] / v_blocks[b] point at block b (a paged cache passes its block table;
// a contiguous cache passes block_size = n_kv and one block).
// Query head h uses KV head h / (n_heads / n_kv_heads) (GQA; MQA when n_kv_heads = 1).
struct AttentionArgs {
  const float* q = nullptr;     // [n_q][q_stride], head h at q + t*q_stride + h*head_dim
  int64_t q_stride = 0;         // floats between query tokens (0 = n_heads*head_dim)
  int64_t n_q = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  const float* const* k_blocks = nullptr;
  const float* const* v_blocks = nullptr;
  int64_t block_size = 0;
  int64_t n_kv = 0;             // valid KV tokens
  int64_t q_pos0 = 0;           // absolute position of query 0 (query t is at q_pos0 + t)
  int64_t kv_pos0 = 0;          // absolute position of KV token 0
  bool causal = true;           // query at p sees KV at positions <= p
  int64_t window = 0;           // > 0: query at p sees only KV at positions > p - window
  float scale = 0;              // usually 1/sqrt(head_dim)
  float softcap = 0;            // > 0: scores = softcap * tanh(scores / softcap)
  float* out = nullptr;         // [n_q][out_stride], head h at out + t*out_stride + h*head_dim
  int64_t out_stride = 0;       // 0 = n_heads*head_dim
  float* lse = nullptr;         // optional [n_q][n_heads]; -inf where a row saw no KV
};
void attention(ThreadPool& pool, const AttentionArgs& args);

// Merges a partial attention result (out_b, lse_b) into (out_a, lse_a) in place:
// rows of dim floats, n_rows rows. Exact: out = (e^la * oa + e^lb * ob) / (e^la + e^lb).
void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b,
                     int64_t n_rows, int64_t dim);

}  // namespace tessera::kernels
