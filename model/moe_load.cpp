#include "model/moe_load.h"

#include "model/llama.h"

namespace tessera {

MoeLoad moe_load_of(const DecoderModel& model) {
  MoeLoad out;
  const auto* llama = dynamic_cast<const LlamaModel*>(&model);
  if (llama == nullptr || llama->moe_stats().empty()) return out;
  out.experts = model.config().moe.n_experts;
  out.layer_begin = llama->plan().layer_begin;
  for (const MoeLayerStats& s : llama->moe_stats())
    for (int64_t e = 0; e < out.experts; ++e)
      out.tokens.push_back(e < static_cast<int64_t>(s.tokens_per_expert.size()) ? s.tokens_per_expert[e] : 0);
  return out;
}

void moe_load_merge(std::vector<std::vector<int64_t>>& by_layer, const MoeLoad& load) {
  if (load.experts <= 0) return;
  const int64_t n = static_cast<int64_t>(load.tokens.size()) / load.experts;
  for (int64_t i = 0; i < n; ++i) {
    const size_t l = static_cast<size_t>(load.layer_begin + i);
    if (by_layer.size() <= l) by_layer.resize(l + 1);
    std::vector<int64_t>& row = by_layer[l];
    if (row.size() < static_cast<size_t>(load.experts)) row.resize(static_cast<size_t>(load.experts), 0);
    for (int64_t e = 0; e < load.experts; ++e) row[e] += load.tokens[i * load.experts + e];
  }
}

}  // namespace tessera
