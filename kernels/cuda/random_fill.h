// Random tensors generated on the device (no host copy): the weights of the
// benchmark-sized model in tools/gpu_check.sh, and test inputs.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace tessera::kernels::cuda {

// dst[i] = uniform in [lo, hi) from a counter-based hash of (seed, i), stored as `t`
// (F32, F16 or BF16). Deterministic for a given seed, independent of the launch shape.
void fill_uniform(void* dst, DType t, int64_t n, float lo, float hi, uint64_t seed, cudaStream_t s);

}  // namespace tessera::kernels::cuda
