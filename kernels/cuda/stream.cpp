#include "kernels/cuda/stream.h"

#include "kernels/cuda/cuda_check.h"

namespace tessera::kernels::cuda {

Stream::Stream() { TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
Stream::~Stream() {
  if (s_) cudaStreamDestroy(s_);
}
void Stream::synchronize() const { TESSERA_CUDA_CHECK(cudaStreamSynchronize(s_)); }

Event::Event(bool timing) {
  TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming));
}
Event::~Event() {
  if (e_) cudaEventDestroy(e_);
}
void Event::record(cudaStream_t s) { TESSERA_CUDA_CHECK(cudaEventRecord(e_, s)); }
void Event::wait_on(cudaStream_t s) const { TESSERA_CUDA_CHECK(cudaStreamWaitEvent(s, e_, 0)); }
void Event::synchronize() const { TESSERA_CUDA_CHECK(cudaEventSynchronize(e_)); }
float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0;
  TESSERA_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e_, e_));
  return ms;
}

}  // namespace tessera::kernels::cuda
