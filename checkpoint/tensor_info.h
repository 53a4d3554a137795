// The format-independent description of one stored tensor.
//
// Shapes are ROW-MAJOR, OUTERMOST FIRST everywhere in tessera: shape.back() is the
// contiguous dimension. GGUF stores ne[] innermost first (ne[0] is contiguous), so the
// GGUF reader exposes shape = reversed ne: a GGUF matrix with ne = {in, out} is
// shape {out, in}, the same as the safetensors / PyTorch shape of that weight.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace tessera::checkpoint {

struct TensorInfo {
  std::string name;
  // The element type as the format names it ("F32", "Q4_K", "I64"): every stored type
  // is listed, even those tessera cannot compute with.
  std::string type_name;
  // The same type as a tessera DType when tessera can use it; empty otherwise.
  std::optional<DType> dtype_opt;
  // Format-specific type id (GGUF: the ggml type id); -1 when the format has none.
  int32_t format_type = -1;
  // Storage blocks: block_elems contiguous elements take block_bytes bytes
  // (1 / 4 for F32, 32 / 34 for Q8_0, 256 / 144 for Q4_K).
  int64_t block_elems = 1;
  int64_t block_bytes = 0;
  std::vector<int64_t> shape;  // row-major, outermost first (see above)
  uint32_t file_index = 0;     // index into Checkpoint::files()
  std::string file;            // path of the file holding the data (or buffer name)
  uint64_t offset = 0;         // absolute byte offset of the first byte in `file`
  uint64_t size = 0;           // bytes

  int64_t elements() const;
  // The DType; throws tessera::Error(kUnsupported) naming the tensor, its stored type
  // and the file when tessera has no DType for it (K-quants, I64, ...).
  DType dtype() const;
  std::string shape_string() const;  // "[512, 64]"
};

}  // namespace tessera::checkpoint
