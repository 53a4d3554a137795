// Dispatch: validates shapes, splits work over the pool and picks the ISA path.
#include "kernels/ops.h"

#include <glog/logging.h>

#include <algorithm>

#include "kernels/cpu_features.h"
#include "kernels/reference.h"

namespace tessera::kernels {

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n, float* y,
            int64_t x_stride, int64_t y_stride) {
  CHECK_EQ(w.cols % dtype_block_elems(w.dtype), 0) << dtype_name(w.dtype) << " cols " << w.cols;
  CHECK_GE(n, 1);
  pool.parallel_for(w.rows, [&](int64_t r0, int64_t r1, int) {
    ref::matmul_rows(w, x, n, y, x_stride, y_stride, r0, r1);
  });
}

void dequantize_row(DType t, const void* src, float* out, int64_t n) {
  ref::dequantize_row(t, src, out, n);
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  ref::quantize_row(t, src, dst, n);
}

void rmsnorm(ThreadPool& pool, const float* x, const float* w, float* out, int64_t n_rows,
             int64_t dim, float eps) {
  pool.parallel_for(n_rows, [&](int64_t r0, int64_t r1, int) {
    ref::rmsnorm(x + r0 * dim, w, out + r0 * dim, r1 - r0, dim, eps);
  });
}

void rope(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
          const int32_t* pos, float theta, RopeLayout layout) {
  ref::rope(x, n_tok, n_heads, head_dim, rot_dim, pos, theta, layout);
}

void softmax(float* x, int64_t n_rows, int64_t n) { ref::softmax(x, n_rows, n); }
void silu_mul(float* gate, const float* up, int64_t n) { ref::silu_mul(gate, up, n); }
void gelu_mul(float* gate, const float* up, int64_t n) { ref::gelu_mul(gate, up, n); }
void silu(float* x, int64_t n) { ref::silu(x, n); }
void gelu(float* x, int64_t n) { ref::gelu(x, n); }
void add_inplace(float* y, const float* x, int64_t n) { ref::add_inplace(y, x, n); }

void attention(ThreadPool& pool, const AttentionArgs& args) {
  pool.parallel_for(args.n_q, [&](int64_t t0, int64_t t1, int) {
    ref::attention_rows(args, t0, t1);
  });
}

void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b,
                     int64_t n_rows, int64_t dim) {
  ref::merge_attention(out_a, lse_a, out_b, lse_b, n_rows, dim);
}

}  // namespace tessera::kernels
