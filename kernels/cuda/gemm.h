// Matrix products on the device: y [n][w.rows] = x [n][w.cols] . W^T, the device form
// of kernels::matmul (kernels/ops.h), activations f32, weights in their stored dtype.
//
//   F32:        cuBLAS SGEMM semantics (CUBLAS_COMPUTE_32F, no TF32).
//   BF16 / F16: x is rounded to the weight type (RNE), products accumulate in f32:
//               cuBLAS GemmEx (tensor cores) for n > 1, an own GEMV for n == 1 (decode,
//               bandwidth-bound: 16-byte loads, one warp per row). This is the
//               ActRounding::kWeightType semantics whatever w.act_rounding says: cuBLAS
//               has no f32 x bf16 product (docs/GPU.md).
//   Q8_0:       x quantised to Q8_0 blocks exactly as ref::quantize_act_block (as
//               llama.cpp does), per-block integer dots scaled by fp16(d_w) * fp16(d_x).
//   Q4_0/Q4_1:  not implemented on the device: tessera::Error(kUnsupported).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_buffer.h"
#include "kernels/dtype.h"

namespace tessera::kernels::cuda {

// A weight matrix W [rows][cols] in device memory; row r at data + r * row_stride bytes.
struct DeviceMatrix {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  int64_t row_stride = 0;  // bytes; 0 = dtype_row_bytes(dtype, cols)
};

class Gemm {
 public:
  // A cuBLAS handle bound to `s` with its own workspace. `pool` holds the converted /
  // quantised activations (stream-ordered reuse).
  Gemm(cudaStream_t s, DevicePool& pool);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // x rows x_stride floats apart (0 = w.cols), y rows y_stride (0 = w.rows); device pointers.
  void matmul(const DeviceMatrix& w, const float* x, int64_t n, float* y, int64_t x_stride = 0,
              int64_t y_stride = 0);

  // Force cuBLAS for BF16/F16 at n == 1 too (tests compare both paths).
  void set_use_gemv(bool on) { use_gemv_ = on; }
  cudaStream_t stream() const { return s_; }

 private:
  cudaStream_t s_;
  DevicePool& pool_;
  cublasHandle_t h_ = nullptr;
  DeviceBuffer workspace_;
  bool use_gemv_ = true;
};

// C [m][n] = A [m][k] . B [n][k]^T, all bf16 (row-major, f32 accumulation): the plain
// cuBLAS product whose rate tools/gpu_check.sh measures as the card's BF16 GEMM ceiling.
void gemm_bf16_raw(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const void* a, const void* b, void* c);

}  // namespace tessera::kernels::cuda
