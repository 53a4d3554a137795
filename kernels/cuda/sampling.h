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

}  // namespace tessera::kernels::cuda
