#include "kernels/cuda/gemm.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <glog/logging.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"

namespace tessera::kernels::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS picks faster kernels with one (Hopper)

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float round_like(__nv_bfloat16, float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
__device__ __forceinline__ float round_like(__half, float x) { return __half2float(__float2half_rn(x)); }

// acc += the 8 products of one 16-byte pack of weights with x[8 i .. 8 i + 7] (rounded).
template <typename T>
__device__ __forceinline__ float dot8(const uint4& pack, const float* x, int64_t i, float acc) {
  const T* wv = reinterpret_cast<const T*>(&pack);
  const float4 x0 = __ldg(reinterpret_cast<const float4*>(x) + 2 * i);
  const float4 x1 = __ldg(reinterpret_cast<const float4*>(x) + 2 * i + 1);
  const T z{};
  acc = fmaf(to_f32(wv[0]), round_like(z, x0.x), acc);
  acc = fmaf(to_f32(wv[1]), round_like(z, x0.y), acc);
  acc = fmaf(to_f32(wv[2]), round_like(z, x0.z), acc);
  acc = fmaf(to_f32(wv[3]), round_like(z, x0.w), acc);
  acc = fmaf(to_f32(wv[4]), round_like(z, x1.x), acc);
  acc = fmaf(to_f32(wv[5]), round_like(z, x1.y), acc);
  acc = fmaf(to_f32(wv[6]), round_like(z, x1.z), acc);
  acc = fmaf(to_f32(wv[7]), round_like(z, x1.w), acc);
  return acc;
}

// y[r] = sum_k W[r][k] * round(x[k]) for one token; one warp per row, each lane reads
// 8 half-precision weights (16 bytes) per pack, 4 packs in flight (decode is bound by
// the bytes in flight per SM). cols % 8 == 0, rows 16-byte aligned.
template <typename T>
__global__ void gemv_half_kernel(const uint8_t* w, int64_t rows, int64_t cols, int64_t row_stride, const float* x,
                                 float* y) {
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t{blockIdx.x} * (blockDim.x / 32) + threadIdx.x / 32;
  if (r >= rows) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + r * row_stride);
  const int64_t n8 = cols / 8;
  float acc = 0.0f;
  int64_t i = lane;
  for (; i + 96 < n8; i += 128) {
    // Streamed once per step: bypass L1 and do not keep in L2 ahead of other data.
    const uint4 p0 = __ldcs(wr + i), p1 = __ldcs(wr + i + 32), p2 = __ldcs(wr + i + 64), p3 = __ldcs(wr + i + 96);
    acc = dot8<T>(p0, x, i, acc);
    acc = dot8<T>(p1, x, i + 32, acc);
    acc = dot8<T>(p2, x, i + 64, acc);
    acc = dot8<T>(p3, x, i + 96, acc);
  }
  for (; i < n8; i += 32) acc = dot8<T>(__ldcs(wr + i), x, i, acc);
  acc = warp_sum(acc);
  if (lane == 0) y[r] = acc;
}

// x [n][cols] (x_stride floats apart) -> q [n][cols] int8 and d [n][cols/32] (fp16-rounded
// scales as f32), exactly ref::quantize_act_block: one thread per 32-block.
__global__ void quantize_q8_kernel(const float* x, int64_t n, int64_t cols, int64_t x_stride, int8_t* q, float* d) {
  const int64_t nb = cols / 32;
  const int64_t idx = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (idx >= n * nb) return;
  const int64_t t = idx / nb, b = idx % nb;
  const float* xb = x + t * x_stride + 32 * b;
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(xb[j]));
  const float dd = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  int8_t* qb = q + t * cols + 32 * b;
  for (int j = 0; j < 32; ++j) qb[j] = static_cast<int8_t>(__float2int_rn(xb[j] * id));
  d[idx] = __half2float(__float2half_rn(dd));
}

// y[t][r] for Q8_0 weights: one warp per (row, token), lanes over blocks.
__global__ void q8_0_dot_kernel(const uint8_t* w, int64_t rows, int64_t cols, int64_t row_stride, const int8_t* xq,
                                const float* xd, int64_t n, float* y, int64_t y_stride) {
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t{blockIdx.x} * (blockDim.x / 32) + threadIdx.x / 32;
  const int64_t t = blockIdx.y;
  if (r >= rows) return;
  const int64_t nb = cols / 32;
  const uint8_t* wr = w + r * row_stride;
  const int8_t* xt = xq + t * cols;
  float acc = 0.0f;
  for (int64_t b = lane; b < nb; b += 32) {
    const uint8_t* blk = wr + b * 34;
    const float dw = __half2float(*reinterpret_cast<const __half*>(blk));  // 2-byte aligned
    const int8_t* qw = reinterpret_cast<const int8_t*>(blk + 2);
    const int* qx = reinterpret_cast<const int*>(xt + 32 * b);  // 32-byte aligned
    int sum = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      // qw + 4j is only 2-byte aligned: assemble the word from two halves.
      const uint16_t lo = *reinterpret_cast<const uint16_t*>(qw + 4 * j);
      const uint16_t hi = *reinterpret_cast<const uint16_t*>(qw + 4 * j + 2);
      sum = __dp4a(static_cast<int>(lo | (static_cast<uint32_t>(hi) << 16)), qx[j], sum);
    }
    acc += dw * xd[t * nb + b] * static_cast<float>(sum);
  }
  acc = warp_sum(acc);
  if (lane == 0) y[t * y_stride + r] = acc;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::kF32: return CUDA_R_32F;
    case DType::kF16: return CUDA_R_16F;
    case DType::kBF16: return CUDA_R_16BF;
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kI32: break;
  }
  LOG(FATAL) << "no cuBLAS type for " << dtype_name(t);
  return CUDA_R_32F;
}

}  // namespace

Gemm::Gemm(cudaStream_t s, DevicePool& pool) : s_(s), pool_(pool), workspace_(kWorkspaceBytes) {
  TESSERA_CUBLAS_CHECK(cublasCreate(&h_));
  TESSERA_CUBLAS_CHECK(cublasSetStream(h_, s_));
  TESSERA_CUBLAS_CHECK(cublasSetWorkspace(h_, workspace_.get(), workspace_.bytes()));
  // Default math: F32 products stay true f32 (no TF32), like the CPU reference.
  TESSERA_CUBLAS_CHECK(cublasSetMathMode(h_, CUBLAS_DEFAULT_MATH));
}

Gemm::~Gemm() {
  if (h_) cublasDestroy(h_);
}

void Gemm::matmul(const DeviceMatrix& w, const float* x, int64_t n, float* y, int64_t x_stride, int64_t y_stride) {
  if (n == 0 || w.rows == 0) return;
  if (x_stride == 0) x_stride = w.cols;
  if (y_stride == 0) y_stride = w.rows;
  const int64_t row_stride = w.row_stride ? w.row_stride : dtype_row_bytes(w.dtype, w.cols);
  switch (w.dtype) {
    case DType::kQ8_0: {
      TESSERA_REQUIRE(w.cols % 32 == 0, ErrorKind::kInvalidInput, "Q8_0 matrix with ", w.cols,
                      " columns (not a multiple of 32)");
      const int64_t nb = w.cols / 32;
      auto* xq = static_cast<int8_t*>(pool_.allocate(static_cast<size_t>(n * w.cols)));
      auto* xd = static_cast<float*>(pool_.allocate(static_cast<size_t>(n * nb) * sizeof(float)));
      const int64_t blocks = n * nb;
      quantize_q8_kernel<<<static_cast<unsigned>((blocks + 127) / 128), 128, 0, s_>>>(x, n, w.cols, x_stride, xq, xd);
      TESSERA_CUDA_CHECK_LAUNCH();
      const dim3 grid(static_cast<unsigned>((w.rows + 7) / 8), static_cast<unsigned>(n));
      q8_0_dot_kernel<<<grid, 256, 0, s_>>>(static_cast<const uint8_t*>(w.data), w.rows, w.cols, row_stride, xq, xd,
                                            n, y, y_stride);
      TESSERA_CUDA_CHECK_LAUNCH();
      pool_.free(xq);
      pool_.free(xd);
      return;
    }
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kI32:
      TESSERA_FAIL(ErrorKind::kUnsupported, "CUDA matmul of ", dtype_name(w.dtype),
                   " weights is not implemented (F32, F16, BF16, Q8_0)");
    case DType::kF32: {
      const float one = 1.0f, zero = 0.0f;
      TESSERA_CUBLAS_CHECK(cublasGemmEx(h_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), static_cast<int>(n),
                                        static_cast<int>(w.cols), &one, w.data, CUDA_R_32F,
                                        static_cast<int>(row_stride / 4), x, CUDA_R_32F, static_cast<int>(x_stride),
                                        &zero, y, CUDA_R_32F, static_cast<int>(y_stride), CUBLAS_COMPUTE_32F,
                                        CUBLAS_GEMM_DEFAULT));
      return;
    }
    case DType::kF16:
    case DType::kBF16: {
      const bool aligned = w.cols % 8 == 0 && row_stride % 16 == 0 &&
                           reinterpret_cast<uintptr_t>(w.data) % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
      if (n == 1 && use_gemv_ && aligned) {
        const unsigned blocks = static_cast<unsigned>((w.rows + 7) / 8);
        const auto* wd = static_cast<const uint8_t*>(w.data);
        if (w.dtype == DType::kBF16)
          gemv_half_kernel<__nv_bfloat16><<<blocks, 256, 0, s_>>>(wd, w.rows, w.cols, row_stride, x, y);
        else
          gemv_half_kernel<__half><<<blocks, 256, 0, s_>>>(wd, w.rows, w.cols, row_stride, x, y);
        TESSERA_CUDA_CHECK_LAUNCH();
        return;
      }
      // x [n][cols] rounded to the weight type, contiguous.
      void* xh = pool_.allocate(static_cast<size_t>(n * w.cols) * 2);
      if (x_stride == w.cols) {
        convert_f32(x, xh, w.dtype, n * w.cols, s_);
      } else {
        for (int64_t t = 0; t < n; ++t)
          convert_f32(x + t * x_stride, static_cast<uint8_t*>(xh) + t * w.cols * 2, w.dtype, w.cols, s_);
      }
      const float one = 1.0f, zero = 0.0f;
      const cudaDataType_t ty = cuda_type(w.dtype);
      TESSERA_CUBLAS_CHECK(cublasGemmEx(h_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), static_cast<int>(n),
                                        static_cast<int>(w.cols), &one, w.data, ty, static_cast<int>(row_stride / 2),
                                        xh, ty, static_cast<int>(w.cols), &zero, y, CUDA_R_32F,
                                        static_cast<int>(y_stride), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      pool_.free(xh);
      return;
    }
  }
}

void gemm_bf16_raw(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const void* a, const void* b, void* c) {
  // Row-major C [m][n] = A [m][k] B^T is column-major C^T [n][m] = B [n][k] (as k x n, T) ...
  // i.e. cuBLAS computes C^T = op(B) op(A) with op = T on the k-major operands.
  const float one = 1.0f, zero = 0.0f;
  TESSERA_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                                    static_cast<int>(k), &one, b, CUDA_R_16BF, static_cast<int>(k), a, CUDA_R_16BF,
                                    static_cast<int>(k), &zero, c, CUDA_R_16BF, static_cast<int>(n),
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace tessera::kernels::cuda
