#include "cli/moe_report.h"

#include <algorithm>
#include <cstdio>

#include "model/llama.h"

namespace tessera::cli {

void print_moe_report(const DecoderModel& model) {
  const auto* llama = dynamic_cast<const LlamaModel*>(&model);
  if (llama == nullptr || llama->moe_stats().empty()) return;
  const MoeConfig& m = model.config().moe;
  std::printf("moe       %s\n", m.summary().c_str());
  std::printf("          %5s %8s %7s %7s %7s %9s | per MoE call, ms: %7s %8s %7s %7s\n", "layer", "tokens", "min/e",
              "mean/e", "max/e", "imbalance", "router", "dispatch", "compute", "combine");
  MoeLayerStats total;
  const auto& stats = llama->moe_stats();
  for (size_t i = 0; i < stats.size(); ++i) {
    const MoeLayerStats& s = stats[i];
    total.add(s);
    if (s.steps == 0) continue;
    const auto [mn, mx] = std::minmax_element(s.tokens_per_expert.begin(), s.tokens_per_expert.end());
    const double mean = static_cast<double>(s.tokens * m.top_k) / static_cast<double>(m.n_experts);
    const double n = static_cast<double>(s.steps);
    std::printf("          %5zu %8lld %7lld %7.1f %7lld %9.2f |                   %7.3f %8.3f %7.3f %7.3f\n", i,
                static_cast<long long>(s.tokens), static_cast<long long>(*mn), mean, static_cast<long long>(*mx),
                s.imbalance(), 1e3 * s.router_s / n, 1e3 * s.dispatch_s / n, 1e3 * s.compute_s / n,
                1e3 * s.combine_s / n);
  }
  const double all = total.router_s + total.dispatch_s + total.compute_s + total.combine_s;
  if (all > 0)
    std::printf("          all layers: router %.1f%%, dispatch %.1f%%, expert compute %.1f%%, combine %.1f%% of %.3f s "
                "in MoE layers; all-to-all %.0f bytes per routed token\n",
                100 * total.router_s / all, 100 * total.dispatch_s / all, 100 * total.compute_s / all,
                100 * total.combine_s / all, all,
                total.tokens > 0 ? static_cast<double>(total.alltoall_bytes) / static_cast<double>(total.tokens) : 0.0);
}

}  // namespace tessera::cli
