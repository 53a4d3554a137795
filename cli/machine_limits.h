// The machine's limits, measured in the same run as a benchmark so that achieved
// numbers can be stated as a fraction of them:
//  - memory read bandwidth: threads stream over a buffer far larger than the caches;
//  - FP32 FMA peak: independent register-resident FMA chains (AVX-512 when present,
//    else AVX2), the ceiling no GEMM can pass.
#pragma once

#include "kernels/thread_pool.h"

namespace tessera::cli {

struct MachineLimits {
  double read_gbps = 0;     // GB/s (1e9 bytes)
  double fma_gflops = 0;    // GFLOP/s, FP32, all threads
  const char* fma_isa = "";
};

MachineLimits measure_machine_limits(kernels::ThreadPool& pool, double seconds_budget = 1.0);

}  // namespace tessera::cli
