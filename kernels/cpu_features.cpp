#include "kernels/cpu_features.h"

#include <algorithm>
#include <atomic>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace tessera::kernels {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool avx = c & (1u << 28);
  const bool fma = c & (1u << 12);
  const bool f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;             // SSE + AVX state
  const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;  // opmask + ZMM_Hi256 + Hi16_ZMM
  if (!os_ymm) return f;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = b & (1u << 5);
  f.fma = fma;
  f.f16c = f16c;
  if (os_zmm) {
    f.avx512f = b & (1u << 16);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512_vnni = c & (1u << 11);
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f.avx512_bf16 = a1 & (1u << 5);
  }
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

Isa level_of(const CpuFeatures& f) {
  if (!(f.avx2 && f.fma && f.f16c)) return Isa::kScalar;
  if (!(f.avx512f && f.avx512bw && f.avx512vl && f.avx512_vnni)) return Isa::kAvx2;
  if (!f.avx512_bf16) return Isa::kAvx512;
  return Isa::kAvx512Bf16;
}

constexpr int kNoOverride = 100;
std::atomic<int> g_override{kNoOverride};  // part of the cached-detection state

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa detected_isa() {
  static const Isa level = level_of(cpu_features());
  return level;
}

Isa active_isa() {
  const int o = g_override.load(std::memory_order_relaxed);
  return static_cast<Isa>(std::min(o, static_cast<int>(detected_isa())));
}

void set_isa_override(Isa isa) { g_override.store(static_cast<int>(isa), std::memory_order_relaxed); }
void clear_isa_override() { g_override.store(kNoOverride, std::memory_order_relaxed); }

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Bf16: return "avx512bf16";
  }
  return "?";
}

ScopedIsa::ScopedIsa(Isa isa) : previous_(g_override.load(std::memory_order_relaxed)) {
  set_isa_override(isa);
}
ScopedIsa::~ScopedIsa() { g_override.store(previous_, std::memory_order_relaxed); }

}  // namespace tessera::kernels
