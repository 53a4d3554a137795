// The ggml tensor element types as stored in GGUF files: id -> name, block size and
// block bytes, for EVERY type ggml has defined (including K-quants and i-quants), so
// tensor sizes and offsets are validated even for types tessera cannot compute with.
// Only F32, F16, BF16, Q8_0, Q4_0 and Q4_1 map to a tessera DType.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "kernels/dtype.h"

namespace tessera::checkpoint {

struct GgmlType {
  uint32_t id;
  std::string_view name;
  int64_t block_elems;  // elements per block
  int64_t block_bytes;  // bytes per block
  std::optional<DType> dtype;  // set when tessera can use the data directly
};

// nullptr for an id ggml never used in GGUF (or retired before GGUF existed).
const GgmlType* ggml_type(uint32_t id);

// The ggml id of a tessera DType (kI32 -> 26); used by writers.
uint32_t ggml_type_id(DType t);

}  // namespace tessera::checkpoint
