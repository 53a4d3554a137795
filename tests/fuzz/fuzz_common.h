// Shared by the checkpoint fuzz targets: exercise everything a parsed checkpoint
// hands out, touching every byte it claims, so ASan sees any out-of-range view.
#pragma once

#include <cstdint>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "checkpoint/inspect.h"

namespace tessera::checkpoint::fuzz {

inline uint64_t touch_all(const Checkpoint& ck) {
  uint64_t sum = 0;
  for (const TensorInfo& t : ck.tensors()) {
    const TensorBytes b = ck.data(t.name);
    for (uint64_t i = 0; i < b.size; ++i) sum += b.data[i];
    if (!t.shape.empty() && t.shape[0] > 0) {
      try {
        const RowSlice r = ck.rows(t.name, t.shape[0] - 1, t.shape[0]);
        if (r.size > 0) sum += r.data[r.size - 1];
      } catch (const Error&) {
      }
      try {
        const ColumnSlice c = ck.columns(t.name, 0, t.shape.back());
        if (c.rows > 0 && c.row_bytes > 0) sum += c.data[(c.rows - 1) * c.row_stride + c.row_bytes - 1];
      } catch (const Error&) {
      }
    }
    try {
      sum += static_cast<uint64_t>(t.dtype());
    } catch (const Error&) {
    }
  }
  std::ostringstream os;
  inspect_checkpoint(ck, os);
  return sum + os.str().size();
}

}  // namespace tessera::checkpoint::fuzz
