// Scalar f16 / bf16 <-> f32 conversions with IEEE round-to-nearest-even.
//
// Bit tricks after F. Giesen's "float_to_half_fast3_rtne": overflow goes to inf, NaN
// stays NaN (quietened), subnormals round correctly. They assume the FPU is not in
// flush-to-zero / denormals-are-zero mode (the default).
#pragma once

#include <bit>
#include <cstdint>

namespace tessera::kernels {

inline float f16_to_f32(uint16_t h) {
  constexpr uint32_t kShiftedExp = 0x7c00u << 13;
  uint32_t o = static_cast<uint32_t>(h & 0x7fff) << 13;
  const uint32_t exp = kShiftedExp & o;
  o += (127 - 15) << 23;
  if (exp == kShiftedExp) {
    o += (128 - 16) << 23;  // inf / nan
  } else if (exp == 0) {
    o += 1 << 23;  // zero / subnormal: renormalise through the FPU
    o = std::bit_cast<uint32_t>(std::bit_cast<float>(o) - std::bit_cast<float>(113u << 23));
  }
  o |= static_cast<uint32_t>(h & 0x8000) << 16;
  return std::bit_cast<float>(o);
}

inline uint16_t f32_to_f16(float f) {
  constexpr uint32_t kF32Inf = 255u << 23;
  constexpr uint32_t kF16Max = (127u + 16) << 23;             // 65536.0f: >= rounds to inf
  constexpr uint32_t kDenormMagic = ((127u - 15) + (23 - 10) + 1) << 23;  // 0.5f
  uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint16_t o;
  if (u >= kF16Max) {
    o = u > kF32Inf ? 0x7e00 : 0x7c00;  // nan -> quiet nan, inf/overflow -> inf
  } else if (u < (113u << 23)) {
    // Result is subnormal or zero: adding 0.5 makes the FPU round at the f16 ulp.
    const float r = std::bit_cast<float>(u) + std::bit_cast<float>(kDenormMagic);
    o = static_cast<uint16_t>(std::bit_cast<uint32_t>(r) - kDenormMagic);
  } else {
    const uint32_t mant_odd = (u >> 13) & 1;
    u += ((15u - 127u) << 23) + 0xfff;  // rebias exponent, round half ...
    u += mant_odd;                       // ... to even
    o = static_cast<uint16_t>(u >> 13);
  }
  return static_cast<uint16_t>(o | (sign >> 16));
}

inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet nan
  u += 0x7fffu + ((u >> 16) & 1);  // round to nearest even; overflow goes to inf
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace tessera::kernels
