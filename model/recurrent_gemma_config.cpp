#include "model/recurrent_gemma_config.h"

#include <cmath>
#include <cstring>

#include "common/error.h"

namespace tessera {

bool is_recurrent_gemma_json(const Json& j) {
  const Json* t = j.find("model_type");
  return t != nullptr && t->is_string() && t->as_string() == "recurrent_gemma";
}

RecurrentGemmaConfig recurrent_gemma_config_from_json(const Json& j, const std::string& source) {
  auto field = [&](const char* name) -> const Json& {
    const Json* v = j.find(name);
    TESSERA_REQUIRE(v != nullptr && !v->is_null(), ErrorKind::kInvalidInput, source, ": missing field '", name, "'");
    return *v;
  };
  auto opt = [&](const char* name) -> const Json* {
    const Json* v = j.find(name);
    return v == nullptr || v->is_null() ? nullptr : v;
  };
  TESSERA_REQUIRE(is_recurrent_gemma_json(j), ErrorKind::kInternal, source, ": not a recurrent_gemma config");
  RecurrentGemmaConfig r;
  ModelConfig& c = r.base;
  c.architecture = "recurrent_gemma";
  c.fixed_state = true;
  c.dim = field("hidden_size").as_int("hidden_size");
  c.n_layers = field("num_hidden_layers").as_int("num_hidden_layers");
  c.n_heads = field("num_attention_heads").as_int("num_attention_heads");
  c.vocab_size = field("vocab_size").as_int("vocab_size");
  TESSERA_REQUIRE(c.n_heads > 0 && c.dim > 0, ErrorKind::kInvalidInput, source,
                  ": hidden_size and num_attention_heads must be > 0");
  c.n_kv_heads = opt("num_key_value_heads") ? opt("num_key_value_heads")->as_int("num_key_value_heads") : 1;
  TESSERA_REQUIRE(c.n_kv_heads == 1, ErrorKind::kUnsupported, source, ": num_key_value_heads = ", c.n_kv_heads,
                  "; RecurrentGemma's local attention is multi-query (1 KV head)");
  c.head_dim = opt("head_dim") ? opt("head_dim")->as_int("head_dim") : c.dim / c.n_heads;
  TESSERA_REQUIRE(c.head_dim * c.n_heads == c.dim, ErrorKind::kInvalidInput, source, ": head_dim ", c.head_dim,
                  " x ", c.n_heads, " heads != hidden_size ", c.dim);
  const int64_t inter = field("intermediate_size").as_int("intermediate_size");
  TESSERA_REQUIRE(inter > 0 && inter % 2 == 0, ErrorKind::kInvalidInput, source, ": intermediate_size ", inter,
                  " must be even (transformers gives each of the two MLP branches half of it)");
  c.ffn_dim = inter / 2;
  c.ffn = FfnKind::kGeGlu;
  c.max_seq_len = kRecurrentGemmaMaxPositions;
  c.norm_eps = static_cast<float>(opt("rms_norm_eps") ? opt("rms_norm_eps")->as_double("rms_norm_eps") : 1e-6);
  c.tied_embeddings = true;  // transformers ties lm_head to embed_tokens
  // transformers rounds sqrt(hidden_size) to bfloat16 before scaling the embeddings.
  {
    const float s = std::sqrt(static_cast<float>(c.dim));
    uint32_t bits;
    std::memcpy(&bits, &s, 4);
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000u;  // round to nearest even
    std::memcpy(&c.embedding_scale, &bits, 4);
  }
  if (const Json* act = opt("hidden_activation")) {
    const std::string a = act->as_string("hidden_activation");
    TESSERA_REQUIRE(a == "gelu_pytorch_tanh" || a == "gelu_tanh", ErrorKind::kUnsupported, source,
                    ": hidden_activation '", a, "' is not supported (gelu_pytorch_tanh)");
  }
  // RoPE: transformers >= 5 nests it in rope_parameters; the published configs have
  // top-level rope_theta and partial_rotary_factor.
  double theta = opt("rope_theta") ? opt("rope_theta")->as_double("rope_theta") : 10000.0;
  double partial = opt("partial_rotary_factor") ? opt("partial_rotary_factor")->as_double("partial_rotary_factor") : 0.5;
  if (const Json* rp = opt("rope_parameters")) {
    TESSERA_REQUIRE(rp->is_object(), ErrorKind::kInvalidInput, source, ": rope_parameters must be an object");
    if (const Json* t = rp->find("rope_theta"); t && !t->is_null()) theta = t->as_double("rope_theta");
    if (const Json* f = rp->find("partial_rotary_factor"); f && !f->is_null())
      partial = f->as_double("partial_rotary_factor");
    if (const Json* k = rp->find("rope_type"); k && !k->is_null())
      TESSERA_REQUIRE(k->as_string("rope_type") == "default", ErrorKind::kUnsupported, source,
                      ": rope_parameters.rope_type '", k->as_string("rope_type"), "' is not supported");
  }
  c.rope_theta = static_cast<float>(theta);
  c.rope_dim = static_cast<int64_t>(static_cast<double>(c.head_dim) * partial);
  c.rope_layout = kernels::RopeLayout::kHalves;  // rotate_half within the rotated dims
  if (const Json* b = opt("attention_bias"))
    TESSERA_REQUIRE(!b->as_bool("attention_bias"), ErrorKind::kUnsupported, source,
                    ": attention_bias = true is not supported (the published models have none)");

  r.lru_width = opt("lru_width") ? opt("lru_width")->as_int("lru_width") : c.dim;
  r.window = field("attention_window_size").as_int("attention_window_size");
  r.conv_width = opt("conv1d_width") ? opt("conv1d_width")->as_int("conv1d_width") : 4;
  r.logits_soft_cap =
      static_cast<float>(opt("logits_soft_cap") ? opt("logits_soft_cap")->as_double("logits_soft_cap") : 0.0);
  // Older exports name the pattern "_block_types".
  const Json* types = opt("block_types") ? opt("block_types") : opt("_block_types");
  TESSERA_REQUIRE(types != nullptr && types->is_array() && !types->as_array().empty(), ErrorKind::kInvalidInput,
                  source, ": missing or empty field 'block_types'");
  std::vector<TemporalBlock> pattern;
  for (const Json& t : types->as_array()) {
    const std::string& s = t.as_string("block_types[]");
    TESSERA_REQUIRE(s == "recurrent" || s == "attention", ErrorKind::kInvalidInput, source, ": block_types entry '",
                    s, "' (expected recurrent or attention)");
    pattern.push_back(s == "recurrent" ? TemporalBlock::kRecurrent : TemporalBlock::kAttention);
  }
  for (int64_t l = 0; l < c.n_layers; ++l) r.blocks.push_back(pattern[l % pattern.size()]);
  r.validate(source);
  return r;
}

void RecurrentGemmaConfig::validate(const std::string& source) const {
  base.validate(source);
  TESSERA_REQUIRE(lru_width > 0 && lru_width % base.n_heads == 0, ErrorKind::kInvalidInput, source,
                  ": lru_width ", lru_width, " must be a positive multiple of num_attention_heads ", base.n_heads,
                  " (the RG-LRU gates are block-diagonal per head)");
  TESSERA_REQUIRE(window >= 1 && window <= (int64_t{1} << 20), ErrorKind::kInvalidInput, source,
                  ": attention_window_size ", window, " is out of range");
  TESSERA_REQUIRE(conv_width >= 1 && conv_width <= 64, ErrorKind::kInvalidInput, source, ": conv1d_width ",
                  conv_width, " is out of range");
  TESSERA_REQUIRE(logits_soft_cap >= 0, ErrorKind::kInvalidInput, source, ": logits_soft_cap must be >= 0");
  TESSERA_REQUIRE(static_cast<int64_t>(blocks.size()) == base.n_layers, ErrorKind::kInternal, source,
                  ": block pattern does not cover the layers");
}

}  // namespace tessera
