// Self-speculation's draft: an int8 (Q8_0) copy of a model's matrices, made at load.
// Every F32 / F16 / BF16 matrix whose rows are a multiple of the 32-element block is
// requantised with kernels::quantize_row into a buffer the LoadedModel owns; matrices
// already block-quantised (Q8_0, Q4_0, Q4_1: no bigger than Q8_0) and rows of another
// length keep their views of the checkpoint. MoE experts (and a shared expert) are
// requantised like dense matrices; routers are kept. On CPUs with AVX-512 VNNI the new Q8_0
// matrices are repacked 16 rows interleaved (kernels/q8_packed.h): only matmul reads them. The embedding table is left as it is (a
// decode step reads one row of it); a tied LM head gets its own Q8_0 copy.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/llama_weights.h"

namespace tessera {

struct Int8CopyStats {
  int64_t requantised = 0;   // matrices copied to Q8_0
  int64_t kept = 0;          // matrices left as they were
  int64_t packed = 0;        // of the requantised: repacked as Q8Rows16 (AVX-512 VNNI CPUs)
  uint64_t bytes_before = 0; // of the requantised matrices
  uint64_t bytes_after = 0;
};

// Rewrites the matrices of `w` in place (see above); the new data lives in `owned`,
// which must outlive the weights.
Int8CopyStats make_int8_copy(LlamaWeights& w, std::vector<std::unique_ptr<uint8_t[]>>& owned);

}  // namespace tessera
