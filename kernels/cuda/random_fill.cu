#include "kernels/cuda/random_fill.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"

namespace tessera::kernels::cuda {

namespace {

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T>
__global__ void fill_kernel(T* dst, int64_t n, float lo, float hi, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t h = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(i)));
    const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // 24 random bits in [0, 1)
    dst[i] = from_f32<T>(lo + (hi - lo) * u);
  }
}

}  // namespace

void fill_uniform(void* dst, DType t, int64_t n, float lo, float hi, uint64_t seed, cudaStream_t s) {
  if (n == 0) return;
  const int threads = 256;
  const int64_t want = (n + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(want < 65535 * 16 ? want : 65535 * 16);
  switch (t) {
    case DType::kF32: fill_kernel<<<blocks, threads, 0, s>>>(static_cast<float*>(dst), n, lo, hi, seed); break;
    case DType::kF16: fill_kernel<<<blocks, threads, 0, s>>>(static_cast<__half*>(dst), n, lo, hi, seed); break;
    case DType::kBF16:
      fill_kernel<<<blocks, threads, 0, s>>>(static_cast<__nv_bfloat16*>(dst), n, lo, hi, seed);
      break;
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kI32:
      TESSERA_FAIL(ErrorKind::kUnsupported, "fill_uniform of ", dtype_name(t));
  }
  TESSERA_CUDA_CHECK_LAUNCH();
}

}  // namespace tessera::kernels::cuda
