#include "server/moe_metrics.h"

#include <algorithm>
#include <cstdio>

namespace tessera::server {

void render_moe_load(std::string& out, const std::vector<std::vector<int64_t>>& by_layer) {
  if (by_layer.empty()) return;
  out += "# HELP tessera_moe_expert_tokens_total (token, expert) pairs routed to each expert\n"
         "# TYPE tessera_moe_expert_tokens_total counter\n";
  for (size_t l = 0; l < by_layer.size(); ++l)
    for (size_t e = 0; e < by_layer[l].size(); ++e)
      out += "tessera_moe_expert_tokens_total{layer=\"" + std::to_string(l) + "\",expert=\"" + std::to_string(e) +
             "\"} " + std::to_string(by_layer[l][e]) + "\n";
  out += "# HELP tessera_moe_layer_tokens_total (token, expert) pairs routed in each MoE layer\n"
         "# TYPE tessera_moe_layer_tokens_total counter\n";
  std::string imbalance = "# HELP tessera_moe_layer_imbalance max / mean tokens per expert (1 = balanced)\n"
                          "# TYPE tessera_moe_layer_imbalance gauge\n";
  for (size_t l = 0; l < by_layer.size(); ++l) {
    const std::vector<int64_t>& row = by_layer[l];
    int64_t total = 0, mx = 0;
    for (const int64_t n : row) {
      total += n;
      mx = std::max(mx, n);
    }
    out += "tessera_moe_layer_tokens_total{layer=\"" + std::to_string(l) + "\"} " + std::to_string(total) + "\n";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g",
                  total > 0 ? static_cast<double>(mx) * static_cast<double>(row.size()) / static_cast<double>(total) : 0.0);
    imbalance += "tessera_moe_layer_imbalance{layer=\"" + std::to_string(l) + "\"} " + buf + "\n";
  }
  out += imbalance;
}

}  // namespace tessera::server
