#include "kernels/q8_packed.h"

#include <glog/logging.h>

#include <cstdlib>
#include <cstring>

#include "kernels/cpu_features.h"

namespace tessera::kernels {

bool q8_rows16_available() {
  static const bool disabled = std::getenv("TESSERA_NO_Q8_PACK") != nullptr;  // read once
  return active_isa() >= Isa::kAvx512 && !disabled;
}

WeightMatrix pack_q8_rows16(const void* src, int64_t src_stride, int64_t rows, int64_t cols, void* dst) {
  CHECK(cols > 0 && cols % 32 == 0) << "Q8_0 rows16 packing needs cols % 32 == 0, got " << cols;
  if (src_stride == 0) src_stride = dtype_row_bytes(DType::kQ8_0, cols);
  const int64_t nb = cols / 32, np = q8_rows16_pairs(cols), gb = q8_rows16_group_bytes(cols);
  auto* out = static_cast<uint8_t*>(dst);
  // Padding (rows past the end, the odd last block) is weight 0: byte 128, scale 0.
  for (int64_t g = 0; g < q8_rows16_groups(rows); ++g) {
    for (int64_t p = 0; p < np; ++p) {
      uint8_t* pair = out + g * gb + p * kQ8Rows16PairBytes;
      std::memset(pair, 128, 1024);
      std::memset(pair + 1024, 0, 64);
      for (int64_t r = 0; r < kQ8Rows16 && g * kQ8Rows16 + r < rows; ++r) {
        const auto* row = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(src) +
                                                             (g * kQ8Rows16 + r) * src_stride);
        for (int64_t h = 0; h < 2 && 2 * p + h < nb; ++h) {
          const BlockQ8_0& b = row[2 * p + h];
          for (int i = 0; i < 8; ++i)
            for (int j = 0; j < 4; ++j)
              pair[h * 512 + i * 64 + r * 4 + j] = static_cast<uint8_t>(b.qs[4 * i + j] + 128);
          std::memcpy(pair + 1024 + h * 32 + 2 * r, &b.d, 2);
        }
      }
    }
  }
  return q8_rows16_view(dst, rows, cols);
}

WeightMatrix q8_rows16_view(const void* data, int64_t rows, int64_t cols) {
  WeightMatrix w;
  w.dtype = DType::kQ8_0;
  w.rows = rows;
  w.cols = cols;
  w.data = data;
  w.layout = WeightLayout::kQ8Rows16;
  return w;
}

void unpack_q8_rows16_row(const WeightMatrix& w, int64_t r, void* out_blocks) {
  CHECK(w.layout == WeightLayout::kQ8Rows16 && r >= 0 && r < w.rows);
  const int64_t nb = w.cols / 32, g = r / kQ8Rows16, rr = r % kQ8Rows16;
  const auto* group = static_cast<const uint8_t*>(w.data) + g * q8_rows16_group_bytes(w.cols);
  auto* out = static_cast<BlockQ8_0*>(out_blocks);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pair = group + (b / 2) * kQ8Rows16PairBytes;
    const int64_t h = b % 2;
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 4; ++j)
        out[b].qs[4 * i + j] = static_cast<int8_t>(pair[h * 512 + i * 64 + rr * 4 + j] - 128);
    std::memcpy(&out[b].d, pair + 1024 + h * 32 + 2 * rr, 2);
  }
}

}  // namespace tessera::kernels
