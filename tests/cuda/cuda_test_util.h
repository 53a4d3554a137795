// Helpers for the CUDA tests: the skip rule, host <-> device copies, per-op tolerances.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"

namespace tessera::kernels::cuda::test {

// Every GPU test starts with this: without a usable device it is SKIPPED with the
// runtime's reason (ctest shows it), never passed.
#define TESSERA_SKIP_WITHOUT_CUDA()                                    \
  do {                                                                 \
    std::string tessera_why_;                                          \
    if (!::tessera::kernels::cuda::device_available(&tessera_why_))    \
      GTEST_SKIP() << tessera_why_;                                    \
  } while (0)

template <typename T>
DeviceBuffer to_device(const std::vector<T>& v) {
  DeviceBuffer b(v.size() * sizeof(T));
  b.upload(v.data(), v.size() * sizeof(T));
  return b;
}

template <typename T>
std::vector<T> from_device(const DeviceBuffer& b, size_t n) {
  std::vector<T> v(n);
  b.download(v.data(), n * sizeof(T));
  return v;
}

// ---------------------------------------------------------------------------------
// Per-op tolerances of the device paths against kernels/reference.h (sums in double).
// The device accumulates in f32 in a different order than the CPU paths, so the
// reductions get a little more room than tests/kernels/test_util.h gives the CPU.
// ---------------------------------------------------------------------------------
// matmul (every dtype): |y - ref| <= kMatmulRel * sum_k |w_k x_k| (x as the reference
//   rounds it: weight type for F16/BF16, Q8_0 blocks for Q8_0).
constexpr double kMatmulRel = 2e-5;
// rmsnorm, softmax (block reductions in f32): |y - ref| <= kReduceAbs + kReduceRel |ref|
constexpr double kReduceRel = 2e-5;
constexpr double kReduceAbs = 1e-6;
// silu/gelu(_mul), add (expf / tanhf, a few ulp): kElemAbs + kElemRel |ref|
constexpr double kElemRel = 1e-5;
constexpr double kElemAbs = 1e-6;
// rope: angles are the reference's f32 values, rotation in double: kRopeAbs * max|x|
constexpr double kRopeAbs = 2e-6;
// attention out: |o - ref| <= kAttnRel * max|v|;  lse: |l - ref| <= kAttnLseAbs
constexpr double kAttnRel = 2e-5;
constexpr double kAttnLseAbs = 3e-5;
// embedding, convert, gather/scatter, argmax: exact.
// ---------------------------------------------------------------------------------

}  // namespace tessera::kernels::cuda::test
