// Weights of one mixture-of-experts FFN layer on one rank: the whole router and the
// experts this rank owns (an EP rank holds a contiguous block of experts, whole: they
// are not tensor-parallel). Views into the mapped checkpoint, like LlamaLayerWeights.
#pragma once

#include <vector>

#include "kernels/ops.h"

namespace tessera {

// One gated FFN: down(act(gate x) * up x).
struct MoeExpertWeights {
  kernels::WeightMatrix gate;  // [ffn][dim]
  kernels::WeightMatrix up;    // [ffn][dim]
  kernels::WeightMatrix down;  // [dim][ffn]
  bool present() const { return up.data != nullptr; }
};

struct MoeLayerWeights {
  kernels::WeightMatrix router;           // [E][dim]: logits of every expert
  std::vector<MoeExpertWeights> experts;  // this rank's experts, expert_begin + i
  MoeExpertWeights shared;                // always-on shared expert (absent: not present())
};

}  // namespace tessera
