#include "model/embedding.h"

#include <cstring>

#include "common/error.h"

namespace tessera {

void embed_vocab_slice(const kernels::WeightMatrix& table, int64_t vocab_begin, int64_t vocab_size,
                       int64_t full_vocab, float scale, std::span<const ForwardSequence> batch, int64_t dim,
                       float* out) {
  const int64_t v0 = vocab_begin, v1 = vocab_begin + vocab_size;
  const auto* rows = static_cast<const uint8_t*>(table.data);
  int64_t t = 0;
  for (const ForwardSequence& s : batch) {
    for (const int32_t tok : s.tokens) {
      TESSERA_REQUIRE(tok >= 0 && tok < full_vocab, ErrorKind::kInvalidInput, "token id ", tok,
                      " is outside the vocabulary of ", full_vocab);
      float* row = out + t * dim;
      if (tok >= v0 && tok < v1) {
        kernels::dequantize_row(table.dtype, rows + (tok - v0) * table.row_stride, row, dim);
        if (scale != 1.0f)
          for (int64_t j = 0; j < dim; ++j) row[j] *= scale;
      } else {
        std::memset(row, 0, static_cast<size_t>(dim) * sizeof(float));
      }
      ++t;
    }
  }
}

}  // namespace tessera
