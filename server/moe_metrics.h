// /metrics lines of a MoE model's expert load (docs/MOE.md, "Observability").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessera::server {

// Appends, for a [layer][expert] table of routed (token, expert) pairs:
//   tessera_moe_expert_tokens_total{layer,expert}  counter
//   tessera_moe_layer_tokens_total{layer}          counter (sum over experts)
//   tessera_moe_layer_imbalance{layer}             gauge: max / mean over experts
// Nothing for an empty table (dense models).
void render_moe_load(std::string& out, const std::vector<std::vector<int64_t>>& by_layer);

}  // namespace tessera::server
