// Sampling support on the device: what stays on the GPU so that a decode step copies
// back a token id, not a row of logits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::kernels::cuda {

// out[r] = the index of the largest of the n floats of row r of x [n_rows][n]; the
// lowest index among equal maxima (std::max_element's rule, the CPU greedy sampler's).
// NaN never wins.
void argmax_rows(const float* x, int64_t n_rows, int64_t n, int32_t* out, cudaStream_t s);

// The k largest of each row of x [n_rows][n], best first (larger value, then lower
// index), into values / indices [n_rows][k]: what a top-k / top-p sampler needs
// instead of the whole row. k <= n; NaNs are never taken (a row with fewer than k
// non-NaN values is padded with -inf / -1). k passes over the row: meant for k up to
// ~100 (TODO(perf): one pass with a block-wide heap for larger k).
void topk_rows(const float* x, int64_t n_rows, int64_t n, int64_t k, float* values, int32_t* indices,
               cudaStream_t s);

}  // namespace tessera::kernels::cuda
