// One CUDA stream per rank, and events to order and time work on it.
#pragma once

#include <cuda_runtime.h>

namespace tessera::kernels::cuda {

class Stream {
 public:
  Stream();  // a non-blocking stream (does not serialise with the legacy default stream)
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void synchronize() const;  // throws tessera::Error if any enqueued work failed

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  explicit Event(bool timing = true);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }
  void record(cudaStream_t s);
  // Makes `s` wait (on the device) for the work recorded before this event.
  void wait_on(cudaStream_t s) const;
  void synchronize() const;
  // Milliseconds between `start` and this event (both recorded and completed).
  float elapsed_ms_since(const Event& start) const;

 private:
  cudaEvent_t e_ = nullptr;
};

}  // namespace tessera::kernels::cuda
