#include "model/moe_config_loader.h"

#include "common/error.h"

namespace tessera {

MoeConfig moe_config_from_gguf(const checkpoint::GgufReader& g, const std::string& arch) {
  const auto& md = g.metadata();
  auto key = [&](const char* k) { return arch + "." + k; };
  MoeConfig m;
  m.n_experts = md.opt_u32(key("expert_count")).value_or(0);
  if (m.n_experts == 0) return m;
  TESSERA_REQUIRE(md.has(key("expert_used_count")), ErrorKind::kInvalidInput, g.path(), ": ", key("expert_count"),
                  " = ", m.n_experts, " but ", key("expert_used_count"), " is missing");
  m.top_k = md.get_u32(key("expert_used_count"));
  m.expert_ffn_dim = md.opt_u32(key("expert_feed_forward_length"))
                         .value_or(md.get_u32(key("feed_forward_length")));
  if (g.contains("blk.0.ffn_up_shexp.weight")) {
    const auto& t = g.info("blk.0.ffn_up_shexp.weight");
    m.shared_ffn_dim = md.opt_u32(key("expert_shared_feed_forward_length"))
                           .value_or(t.shape.empty() ? 0 : static_cast<uint32_t>(t.shape[0]));
  }
  m.normalize_gates = md.opt_bool(key("expert_weights_norm")).value_or(true);
  if (auto r = md.opt_string(key("expert_router"))) m.router = moe_router_kind_from(*r, g.path() + ": " + key("expert_router"));
  m.sinkhorn_iters = md.opt_u32(key("expert_sinkhorn_iterations")).value_or(8);
  return m;
}

MoeConfig moe_config_from_hf_json(const Json& j, const std::string& source) {
  auto field = [&](const char* name) -> int64_t {
    const Json* v = j.find(name);
    TESSERA_REQUIRE(v != nullptr && !v->is_null(), ErrorKind::kInvalidInput, source, ": missing field '", name, "'");
    return v->as_int(name);
  };
  MoeConfig m;
  m.n_experts = field("num_local_experts");
  m.top_k = field("num_experts_per_tok");
  m.expert_ffn_dim = field("intermediate_size");
  m.normalize_gates = true;
  TESSERA_REQUIRE(m.n_experts > 0, ErrorKind::kInvalidInput, source, ": num_local_experts must be > 0");
  // Mixtral's optional sliding window would change attention, not the experts.
  const Json* sw = j.find("sliding_window");
  TESSERA_REQUIRE(sw == nullptr || sw->is_null(), ErrorKind::kUnsupported, source,
                  ": sliding_window is set; sliding-window attention is not supported yet");
  return m;
}

}  // namespace tessera
