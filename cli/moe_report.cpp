#include "cli/moe_report.h"

#include <algorithm>
#include <cstdio>

#include "model/llama.h"

namespace tessera::cli {

void print_moe_report(StepRunner& runner, const DecoderModel* local) {
  const MoeConfig& m = runner.config().moe;
  if (!m.enabled()) return;
  const std::vector<std::vector<int64_t>> load = runner.moe_expert_load();
  const auto* llama = dynamic_cast<const LlamaModel*>(local);
  const std::vector<MoeLayerStats>* times = llama != nullptr ? &llama->moe_stats() : nullptr;
  std::printf("moe       %s\n", m.summary().c_str());
  std::printf("          %5s %8s %7s %7s %7s %9s", "layer", "tokens", "min/e", "mean/e", "max/e", "imbalance");
  if (times != nullptr) std::printf(" | per MoE call, ms: %7s %8s %7s %7s", "router", "dispatch", "compute", "combine");
  std::printf("\n");
  MoeLayerStats total;
  for (size_t l = 0; l < load.size(); ++l) {
    MoeLayerStats s;
    s.tokens_per_expert = load[l];
    int64_t pairs = 0;
    for (const int64_t n : load[l]) pairs += n;
    if (pairs == 0) continue;
    const auto [mn, mx] = std::minmax_element(load[l].begin(), load[l].end());
    std::printf("          %5zu %8lld %7lld %7.1f %7lld %9.2f", l, static_cast<long long>(pairs / m.top_k),
                static_cast<long long>(*mn), static_cast<double>(pairs) / static_cast<double>(m.n_experts),
                static_cast<long long>(*mx), s.imbalance());
    if (times != nullptr && l < times->size() && (*times)[l].steps > 0) {
      const MoeLayerStats& t = (*times)[l];
      const double n = static_cast<double>(t.steps);
      std::printf(" |                   %7.3f %8.3f %7.3f %7.3f", 1e3 * t.router_s / n, 1e3 * t.dispatch_s / n,
                  1e3 * t.compute_s / n, 1e3 * t.combine_s / n);
      total.add(t);
    }
    std::printf("\n");
  }
  const double all = total.router_s + total.dispatch_s + total.compute_s + total.combine_s;
  if (all > 0)
    std::printf("          all layers: router %.1f%%, dispatch %.1f%%, expert compute %.1f%%, combine %.1f%% of %.3f s "
                "in MoE layers\n",
                100 * total.router_s / all, 100 * total.dispatch_s / all, 100 * total.compute_s / all,
                100 * total.combine_s / all, all);
}

}  // namespace tessera::cli
