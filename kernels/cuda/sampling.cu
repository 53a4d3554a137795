#include "kernels/cuda/sampling.h"

#include "kernels/cuda/cuda_check.h"

namespace tessera::kernels::cuda {

namespace {

// (value, index) with "better" = larger value, then smaller index.
__device__ __forceinline__ bool better(float v, int32_t i, float bv, int32_t bi) {
  return v > bv || (v == bv && i < bi);
}

__global__ void argmax_kernel(const float* x, int64_t n, int32_t* out) {
  const float* row = x + blockIdx.x * n;
  float bv = -INFINITY;
  int32_t bi = 0x7fffffff;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = row[i];
    if (better(v, static_cast<int32_t>(i), bv, bi)) bv = v, bi = static_cast<int32_t>(i);
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  __shared__ float sv[32];
  __shared__ int32_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) sv[warp] = bv, si[warp] = bi;
  __syncthreads();
  if (warp == 0) {
    const int n_warps = blockDim.x >> 5;
    bv = lane < n_warps ? sv[lane] : -INFINITY;
    bi = lane < n_warps ? si[lane] : 0x7fffffff;
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
    }
    if (lane == 0) out[blockIdx.x] = bi == 0x7fffffff ? 0 : bi;  // an all-NaN row gives 0
  }
}

// Block-wide best of (bv, bi) pairs; every thread gets the result.
__device__ void block_best(float& bv, int32_t& bi) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  __shared__ float sv[32];
  __shared__ int32_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // the previous call's readers are done with sv / si
  if (lane == 0) sv[warp] = bv, si[warp] = bi;
  __syncthreads();
  const int n_warps = blockDim.x >> 5;
  bv = lane < n_warps ? sv[lane] : -INFINITY;
  bi = lane < n_warps ? si[lane] : 0x7fffffff;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
}

// Pass j takes the best element strictly after the (j-1)-th in the (value desc, index
// asc) order, so no element is taken twice and no scratch is needed.
__global__ void topk_kernel(const float* x, int64_t n, int64_t k, float* values, int32_t* indices) {
  const float* row = x + blockIdx.x * n;
  float last_v = INFINITY;
  int32_t last_i = -1;
  for (int64_t j = 0; j < k; ++j) {
    float bv = -INFINITY;
    int32_t bi = 0x7fffffff;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = row[i];
      const int32_t ii = static_cast<int32_t>(i);
      if (better(last_v, last_i, v, ii) && better(v, ii, bv, bi)) bv = v, bi = ii;
    }
    block_best(bv, bi);
    if (threadIdx.x == 0) {
      values[blockIdx.x * k + j] = bi == 0x7fffffff ? -INFINITY : bv;
      indices[blockIdx.x * k + j] = bi == 0x7fffffff ? -1 : bi;
    }
    if (bi == 0x7fffffff) {  // nothing left (NaNs only): pad the rest
      for (int64_t r = j + 1 + threadIdx.x; r < k; r += blockDim.x) {
        values[blockIdx.x * k + r] = -INFINITY;
        indices[blockIdx.x * k + r] = -1;
      }
      return;
    }
    last_v = bv, last_i = bi;
  }
}

}  // namespace

void topk_rows(const float* x, int64_t n_rows, int64_t n, int64_t k, float* values, int32_t* indices,
               cudaStream_t s) {
  TESSERA_REQUIRE(k >= 1 && k <= n, ErrorKind::kInvalidInput, "top-k with k = ", k, " over rows of ", n);
  if (n_rows == 0) return;
  topk_kernel<<<static_cast<unsigned>(n_rows), 1024, 0, s>>>(x, n, k, values, indices);
  TESSERA_CUDA_CHECK_LAUNCH();
}

void argmax_rows(const float* x, int64_t n_rows, int64_t n, int32_t* out, cudaStream_t s) {
  if (n_rows == 0) return;
  argmax_kernel<<<static_cast<unsigned>(n_rows), 1024, 0, s>>>(x, n, out);
  TESSERA_CUDA_CHECK_LAUNCH();
}

}  // namespace tessera::kernels::cuda
