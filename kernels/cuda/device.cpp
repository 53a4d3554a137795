#include "kernels/cuda/device.h"

#include <sstream>

#include "kernels/cuda/cuda_check.h"

namespace tessera::kernels::cuda {

void throw_cuda_error(cudaError_t e, const char* what, const char* file, int line) {
  const ErrorKind kind = e == cudaErrorMemoryAllocation ? ErrorKind::kResource : ErrorKind::kInternal;
  TESSERA_FAIL(kind, "CUDA error ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ") in ", what, " at ", file,
               ":", line);
}

void throw_cublas_error(cublasStatus_t s, const char* what, const char* file, int line) {
  const ErrorKind kind = s == CUBLAS_STATUS_ALLOC_FAILED ? ErrorKind::kResource : ErrorKind::kInternal;
  TESSERA_FAIL(kind, "cuBLAS error ", cublasGetStatusName(s), " (", cublasGetStatusString(s), ") in ", what, " at ",
               file, ":", line);
}

bool device_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = std::string("no CUDA device: cudaGetDeviceCount says ") + cudaGetErrorName(e) + " (" +
                    cudaGetErrorString(e) + ")";
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return false;
  }
  if (n == 0) {
    if (why) *why = "no CUDA device: cudaGetDeviceCount found 0 devices";
    return false;
  }
  return true;
}

void select_device(int index) {
  int n = 0;
  TESSERA_CUDA_CHECK(cudaGetDeviceCount(&n));
  TESSERA_REQUIRE(index >= 0 && index < n, ErrorKind::kInvalidInput, "CUDA device ", index,
                  " does not exist (this machine has ", n, ")");
  TESSERA_CUDA_CHECK(cudaSetDevice(index));
}

DeviceInfo device_info() {
  int dev = 0;
  TESSERA_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  TESSERA_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  DeviceInfo info;
  info.name = p.name;
  info.sm_count = p.multiProcessorCount;
  info.cc_major = p.major;
  info.cc_minor = p.minor;
  TESSERA_CUDA_CHECK(cudaMemGetInfo(&info.free_bytes, &info.total_bytes));
  return info;
}

}  // namespace tessera::kernels::cuda
