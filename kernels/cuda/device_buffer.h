// Device memory: an owning buffer (plain cudaMalloc, never managed memory) and a
// caching pool for the activations and scratch of a forward step.
//
// Weights and the KV cache are allocated once, as DeviceBuffers. Activations change
// size with the batch; DevicePool keeps freed blocks by size so a steady stream of
// steps of the same shapes stops calling cudaMalloc (which synchronises the device).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>

namespace tessera::kernels::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

  // Host <-> device copies of the first `bytes` (synchronous; for set-up and tests).
  void upload(const void* src, size_t bytes);
  void download(void* dst, size_t bytes) const;

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Size-class caching allocator. Requests round up to 256 B (below 1 MiB) or 2 MiB
// (above); free() returns a block to its class, allocate() reuses one of the same
// class before asking cudaMalloc. Not thread-safe: one pool per compute thread.
class DevicePool {
 public:
  DevicePool() = default;
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  void* allocate(size_t bytes);
  void free(void* ptr);
  // cudaFree of every cached (free) block; live blocks stay.
  void release_cached();

  size_t bytes_in_use() const { return in_use_; }
  size_t bytes_cached() const { return cached_; }
  size_t cuda_mallocs() const { return mallocs_; }
  static size_t round_size(size_t bytes);

 private:
  std::unordered_map<void*, size_t> live_;    // ptr -> class size
  std::multimap<size_t, void*> free_;         // class size -> cached block
  size_t in_use_ = 0, cached_ = 0, mallocs_ = 0;
};

}  // namespace tessera::kernels::cuda
