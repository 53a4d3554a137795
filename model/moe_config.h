// Hyperparameters of a mixture-of-experts FFN (docs/MOE.md). A ModelConfig whose
// `moe.n_experts` is 0 is dense; otherwise every layer's FFN is a MoE layer: a router
// [E][dim], E gated experts of expert_ffn_dim hidden units, top_k experts per token,
// and optionally one always-on shared expert of shared_ffn_dim units.
#pragma once

#include <cstdint>
#include <string>

namespace tessera {

enum class MoeRouterKind {
  kTopK,      // softmax over the router logits, the k largest (Mixtral / Switch)
  kHash,      // k distinct experts from a fixed hash of the token id (Hash Layers)
  kBalanced,  // S-BASE: Sinkhorn-balanced assignment over the step's tokens, top-1
};

const char* moe_router_kind_name(MoeRouterKind kind);
// "topk" | "hash" | "sbase"; throws kInvalidInput naming `source` otherwise.
MoeRouterKind moe_router_kind_from(const std::string& name, const std::string& source);

struct MoeConfig {
  int64_t n_experts = 0;        // E; 0 = dense FFN
  int64_t top_k = 0;            // experts per token
  int64_t expert_ffn_dim = 0;   // hidden units of one expert
  int64_t shared_ffn_dim = 0;   // hidden units of the shared expert (0 = none)
  bool normalize_gates = true;  // renormalise the k selected softmax gates to sum 1
  MoeRouterKind router = MoeRouterKind::kTopK;
  int64_t sinkhorn_iters = 8;   // kBalanced only

  bool enabled() const { return n_experts > 0; }
  // Throws tessera::Error(kInvalidInput) naming `source` and the field.
  void validate(const std::string& source) const;
  std::string summary() const;  // "moe: 8 experts x 48 units, top-2 topk (renormalised)"
};

}  // namespace tessera
