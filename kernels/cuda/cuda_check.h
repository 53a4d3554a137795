// Error checks for CUDA runtime and cuBLAS calls.
//
// A failed call throws tessera::Error naming the call, the file:line and CUDA's own
// message: out-of-memory is kResource (a user can size the model or the KV cache
// down), anything else kInternal (a bug or a broken device). Kernel launches are
// checked with TESSERA_CUDA_CHECK_LAUNCH() right after the <<<>>>.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "common/error.h"

namespace tessera::kernels::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* what, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t s, const char* what, const char* file, int line);

}  // namespace tessera::kernels::cuda

#define TESSERA_CUDA_CHECK(call)                                                          \
  do {                                                                                    \
    const cudaError_t tessera_cuda_err_ = (call);                                         \
    if (tessera_cuda_err_ != cudaSuccess)                                                 \
      ::tessera::kernels::cuda::throw_cuda_error(tessera_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define TESSERA_CUDA_CHECK_LAUNCH() TESSERA_CUDA_CHECK(cudaGetLastError())

#define TESSERA_CUBLAS_CHECK(call)                                                        \
  do {                                                                                    \
    const cublasStatus_t tessera_cublas_st_ = (call);                                     \
    if (tessera_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                      \
      ::tessera::kernels::cuda::throw_cublas_error(tessera_cublas_st_, #call, __FILE__, __LINE__); \
  } while (0)
