#include "sharding/plan.h"

#include <sstream>

#include "common/error.h"

namespace tessera {

void validate_split(const ModelConfig& c, int tp, int pp, int64_t weight_block) {
  TESSERA_REQUIRE(tp >= 1 && pp >= 1, ErrorKind::kInvalidInput, "tp and pp must be >= 1 (got tp = ", tp,
                  ", pp = ", pp, ")");
  TESSERA_REQUIRE(c.n_heads % tp == 0, ErrorKind::kInvalidInput, "the model's ", c.n_heads,
                  " query heads do not split evenly over tp = ", tp);
  if (c.n_kv_heads >= tp) {
    TESSERA_REQUIRE(c.n_kv_heads % tp == 0, ErrorKind::kInvalidInput, "the model's ", c.n_kv_heads,
                    " KV heads do not split evenly over tp = ", tp);
  } else {
    TESSERA_REQUIRE(tp % c.n_kv_heads == 0, ErrorKind::kInvalidInput, "tp = ", tp, " is not a multiple of the ",
                    c.n_kv_heads, " KV heads, so they cannot be replicated evenly");
  }
  TESSERA_REQUIRE(c.moe.enabled() || c.ffn_dim % tp == 0, ErrorKind::kInvalidInput, "the FFN's ", c.ffn_dim,
                  " hidden units do not split evenly over tp = ", tp);
  TESSERA_REQUIRE(c.vocab_size >= tp, ErrorKind::kInvalidInput, "vocabulary of ", c.vocab_size,
                  " is smaller than tp = ", tp);
  TESSERA_REQUIRE(c.n_layers >= pp, ErrorKind::kInvalidInput, "the model's ", c.n_layers,
                  " layers cannot fill pp = ", pp, " stages");
  if (weight_block > 1 && tp > 1) {
    TESSERA_REQUIRE((c.moe.enabled() || (c.ffn_dim / tp) % weight_block == 0) && (c.q_dim() / tp) % weight_block == 0,
                    ErrorKind::kInvalidInput, "with tp = ", tp, " the row-parallel slices (", c.ffn_dim / tp,
                    " FFN units, ", c.q_dim() / tp, " attention dims per rank) do not fall on the weights' ",
                    weight_block, "-element quantisation blocks");
  }
}

ShardPlan make_shard_plan(const ModelConfig& c, const ShardSpec& s, int64_t weight_block) {
  validate_split(c, s.tp, s.pp, weight_block);
  TESSERA_REQUIRE(s.tp_rank >= 0 && s.tp_rank < s.tp && s.pp_rank >= 0 && s.pp_rank < s.pp, ErrorKind::kInternal,
                  "shard rank out of range");
  ShardPlan p;
  p.spec = s;
  // Layers: the first n_layers % pp stages get one extra.
  const int64_t base = c.n_layers / s.pp, extra = c.n_layers % s.pp;
  p.layer_begin = s.pp_rank * base + std::min<int64_t>(s.pp_rank, extra);
  p.layer_end = p.layer_begin + base + (s.pp_rank < extra ? 1 : 0);
  p.n_q_heads = c.n_heads / s.tp;
  p.q_head_begin = s.tp_rank * p.n_q_heads;
  if (c.n_kv_heads >= s.tp) {
    p.n_kv_heads = c.n_kv_heads / s.tp;
    p.kv_head_begin = s.tp_rank * p.n_kv_heads;
  } else {
    p.n_kv_heads = 1;
    p.kv_head_begin = p.q_head_begin / (c.n_heads / c.n_kv_heads);
  }
  p.ffn_size = c.ffn_dim / s.tp;
  p.ffn_begin = s.tp_rank * p.ffn_size;
  // Vocabulary: ceil split, the last rank takes the remainder.
  const int64_t per = (c.vocab_size + s.tp - 1) / s.tp;
  p.vocab_begin = std::min<int64_t>(s.tp_rank * per, c.vocab_size);
  p.vocab_size = std::min<int64_t>(per, c.vocab_size - p.vocab_begin);
  TESSERA_REQUIRE(s.ep >= 1 && s.ep_rank >= 0 && s.ep_rank < s.ep, ErrorKind::kInternal, "EP rank out of range");
  if (c.moe.enabled()) {
    TESSERA_REQUIRE(c.moe.n_experts % s.ep == 0, ErrorKind::kInvalidInput, "the model's ", c.moe.n_experts,
                    " experts do not split evenly over ep = ", s.ep);
    p.n_experts = c.moe.n_experts / s.ep;
    p.expert_begin = s.ep_rank * p.n_experts;
  } else {
    TESSERA_REQUIRE(s.ep == 1, ErrorKind::kInvalidInput, "--ep ", s.ep, " needs a mixture-of-experts model; this one is dense");
  }
  return p;
}

ShardPlan full_plan(const ModelConfig& c) { return make_shard_plan(c, ShardSpec{}); }

std::string ShardPlan::describe() const {
  std::ostringstream os;
  os << "pp " << spec.pp_rank << "/" << spec.pp << " layers [" << layer_begin << ", " << layer_end << "), tp "
     << spec.tp_rank << "/" << spec.tp << " q heads [" << q_head_begin << ", " << q_head_begin + n_q_heads
     << "), kv heads [" << kv_head_begin << ", " << kv_head_begin + n_kv_heads << "), ffn [" << ffn_begin << ", "
     << ffn_begin + ffn_size << "), vocab [" << vocab_begin << ", " << vocab_begin + vocab_size << ")";
  if (n_experts > 0)
    os << ", ep " << spec.ep_rank << "/" << spec.ep << " experts [" << expert_begin << ", " << expert_begin + n_experts
       << ")";
  return os.str();
}

}  // namespace tessera
