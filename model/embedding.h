// The vocab-parallel embedding lookup every decoder family shares: this rank owns rows
// [vocab_begin, vocab_begin + vocab_size) of the table; tokens of other ranks give zero
// rows, and the caller's TP all-reduce completes every row.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/ops.h"
#include "model/model.h"

namespace tessera {

// out [tokens of batch][dim] = scale * table[token - vocab_begin] (or zeros), in batch
// order. Throws kInvalidInput for a token outside [0, full_vocab).
void embed_vocab_slice(const kernels::WeightMatrix& table, int64_t vocab_begin, int64_t vocab_size,
                       int64_t full_vocab, float scale, std::span<const ForwardSequence> batch, int64_t dim,
                       float* out);

}  // namespace tessera
