// Run-time CPU feature detection and the ISA level the ops dispatch on.
//
// Levels are ordered; each includes the ones below it:
//   kScalar     plain C++ (the reference code paths)
//   kAvx2       AVX2 + FMA + F16C                      (Haswell+, Zen1+)
//   kAvx512     AVX-512 F/BW/VL + AVX512_VNNI          (Ice Lake+, Zen4+)
//   kAvx512Bf16 kAvx512 + AVX512_BF16 (vdpbf16ps)      (Cooper Lake, Sapphire Rapids, Zen4+)
// A CPU with AVX-512 but no VNNI (Skylake-X) runs the AVX2 level. The detection is the
// one process-wide cache in kernels/; tests force lower levels with set_isa_override
// to exercise every path on one machine.
#pragma once

#include <string_view>

namespace tessera::kernels {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Bf16 = 3 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false;
  bool avx512_vnni = false, avx512_bf16 = false;
};

// cpuid + xgetbv (the OS must save the ymm/zmm state), computed once.
const CpuFeatures& cpu_features();

// Highest level this CPU and OS support.
Isa detected_isa();

// Level the ops use now: min(detected, override).
Isa active_isa();

// Forces ops to use at most `isa` (tests, benchmarks). Levels above detected_isa()
// are clamped. Not meant to be changed while ops run on other threads.
void set_isa_override(Isa isa);
void clear_isa_override();

std::string_view isa_name(Isa isa);

// RAII override for tests: restores the previous override on destruction.
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa);
  ~ScopedIsa();
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

 private:
  int previous_;
};

}  // namespace tessera::kernels
