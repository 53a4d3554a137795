// Element types of weights and activations, and the byte layout of block formats.
//
// Block-quantised formats follow ggml's layouts exactly so GGUF tensors are used in
// place (no repacking at load):
//   Q8_0: 32 elements = f16 scale d, then 32 x int8 q;         x = d * q        (34 bytes)
//   Q4_0: 32 elements = f16 d, 16 bytes of nibbles;            x = d * (q - 8)  (18 bytes)
//         element j < 16 is the low nibble of byte j, element j + 16 its high nibble
//   Q4_1: 32 elements = f16 d, f16 m, 16 bytes of nibbles;     x = d * q + m    (20 bytes)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kQ8_0,
  kQ4_0,
  kQ4_1,
  kI32,  // token ids, positions
};

constexpr int64_t kQuantBlock = 32;  // elements per Q8_0 / Q4_0 / Q4_1 block

struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[16]; };
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kQ8_0: return "Q8_0";
    case DType::kQ4_0: return "Q4_0";
    case DType::kQ4_1: return "Q4_1";
    case DType::kI32: return "I32";
  }
  return "?";
}

// Elements per storage block (1 for plain types).
constexpr int64_t dtype_block_elems(DType t) {
  switch (t) {
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1: return kQuantBlock;
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kI32: return 1;
  }
  return 1;
}

// Bytes per storage block.
constexpr int64_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kQ8_0: return sizeof(BlockQ8_0);
    case DType::kQ4_0: return sizeof(BlockQ4_0);
    case DType::kQ4_1: return sizeof(BlockQ4_1);
    case DType::kI32: return 4;
  }
  return 0;
}

constexpr bool dtype_is_quantized(DType t) { return dtype_block_elems(t) > 1; }

// Bytes of a contiguous run of n elements; n must be a multiple of the block size
// (callers validate shapes against dtype_block_elems before asking).
constexpr int64_t dtype_row_bytes(DType t, int64_t n) {
  return n / dtype_block_elems(t) * dtype_block_bytes(t);
}

}  // namespace tessera
