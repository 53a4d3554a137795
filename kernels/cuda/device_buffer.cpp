#include "kernels/cuda/device_buffer.h"

#include <glog/logging.h>

#include "kernels/cuda/cuda_check.h"

namespace tessera::kernels::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) TESSERA_CUDA_CHECK(cudaMalloc(&ptr_, bytes));
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);  // no throw from a destructor; a failure here is a dead device
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void DeviceBuffer::upload(const void* src, size_t bytes) {
  CHECK_LE(bytes, bytes_);
  if (bytes) TESSERA_CUDA_CHECK(cudaMemcpy(ptr_, src, bytes, cudaMemcpyHostToDevice));
}

void DeviceBuffer::download(void* dst, size_t bytes) const {
  CHECK_LE(bytes, bytes_);
  if (bytes) TESSERA_CUDA_CHECK(cudaMemcpy(dst, ptr_, bytes, cudaMemcpyDeviceToHost));
}

size_t DevicePool::round_size(size_t bytes) {
  constexpr size_t kSmall = 256, kLarge = size_t{2} << 20, kSplit = size_t{1} << 20;
  if (bytes == 0) bytes = 1;
  const size_t q = bytes <= kSplit ? kSmall : kLarge;
  return (bytes + q - 1) / q * q;
}

void* DevicePool::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  void* p = nullptr;
  auto it = free_.find(size);
  if (it != free_.end()) {
    p = it->second;
    free_.erase(it);
    cached_ -= size;
  } else {
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation && !free_.empty()) {
      cudaGetLastError();
      release_cached();  // the cache may hold what this request needs, in other classes
      e = cudaMalloc(&p, size);
    }
    TESSERA_CUDA_CHECK(e);
    ++mallocs_;
  }
  live_.emplace(p, size);
  in_use_ += size;
  return p;
}

void DevicePool::free(void* ptr) {
  if (!ptr) return;
  auto it = live_.find(ptr);
  CHECK(it != live_.end()) << "DevicePool::free of a pointer it did not allocate";
  free_.emplace(it->second, ptr);
  in_use_ -= it->second;
  cached_ += it->second;
  live_.erase(it);
}

void DevicePool::release_cached() {
  for (auto& [size, p] : free_) cudaFree(p);
  free_.clear();
  cached_ = 0;
}

DevicePool::~DevicePool() {
  release_cached();
  for (auto& [p, size] : live_) cudaFree(p);
}

}  // namespace tessera::kernels::cuda
