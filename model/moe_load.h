// Expert load of a model, as plain numbers that travel (RPC WorkerStats) and merge:
// tokens routed to each expert per layer (docs/MOE.md, "Observability").
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace tessera {

struct MoeLoad {
  int64_t layer_begin = 0;      // first layer of this shard
  int64_t experts = 0;          // E (0: dense model, nothing below)
  std::vector<int64_t> tokens;  // [layers of the shard][E], cumulative (token, expert) pairs
};

// This process's layers (a LlamaModel with experts); empty for anything else.
MoeLoad moe_load_of(const DecoderModel& model);

// Adds `load` into `by_layer` ([layer][E], grown as needed): ranks of a stage route
// disjoint shares, so their counts add up to the stage's.
void moe_load_merge(std::vector<std::vector<int64_t>>& by_layer, const MoeLoad& load);

}  // namespace tessera
