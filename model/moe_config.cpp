#include "model/moe_config.h"

#include <sstream>

#include "common/error.h"

namespace tessera {

const char* moe_router_kind_name(MoeRouterKind kind) {
  switch (kind) {
    case MoeRouterKind::kTopK: return "topk";
    case MoeRouterKind::kHash: return "hash";
    case MoeRouterKind::kBalanced: return "sbase";
  }
  return "?";
}

MoeRouterKind moe_router_kind_from(const std::string& name, const std::string& source) {
  if (name == "topk") return MoeRouterKind::kTopK;
  if (name == "hash") return MoeRouterKind::kHash;
  if (name == "sbase") return MoeRouterKind::kBalanced;
  TESSERA_FAIL(ErrorKind::kInvalidInput, source, ": router kind '", name, "' is not one of topk, hash, sbase");
}

void MoeConfig::validate(const std::string& source) const {
  if (!enabled()) return;
  TESSERA_REQUIRE(n_experts <= (int64_t{1} << 20), ErrorKind::kInvalidInput, source, ": expert_count ", n_experts,
                  " is out of range");
  TESSERA_REQUIRE(top_k >= 1 && top_k <= n_experts, ErrorKind::kInvalidInput, source, ": expert_used_count ", top_k,
                  " must be in [1, expert_count = ", n_experts, "]");
  TESSERA_REQUIRE(expert_ffn_dim > 0 && expert_ffn_dim < (int64_t{1} << 32), ErrorKind::kInvalidInput, source,
                  ": expert feed_forward_length ", expert_ffn_dim, " is out of range");
  TESSERA_REQUIRE(shared_ffn_dim >= 0 && shared_ffn_dim < (int64_t{1} << 32), ErrorKind::kInvalidInput, source,
                  ": shared expert feed_forward_length ", shared_ffn_dim, " is out of range");
  TESSERA_REQUIRE(router != MoeRouterKind::kBalanced || top_k == 1, ErrorKind::kUnsupported, source,
                  ": the balanced (sbase) router assigns one expert per token; expert_used_count is ", top_k);
  TESSERA_REQUIRE(sinkhorn_iters >= 1 && sinkhorn_iters <= 1000, ErrorKind::kInvalidInput, source,
                  ": sinkhorn iterations ", sinkhorn_iters, " must be in [1, 1000]");
}

std::string MoeConfig::summary() const {
  std::ostringstream os;
  os << "moe: " << n_experts << " experts x " << expert_ffn_dim << " units, top-" << top_k << " "
     << moe_router_kind_name(router) << (normalize_gates ? " (renormalised)" : " (softmax gates)");
  if (shared_ffn_dim > 0) os << ", shared expert " << shared_ffn_dim << " units";
  return os.str();
}

}  // namespace tessera
