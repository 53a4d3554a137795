#include "model/config_loader.h"

#include <cmath>

#include "checkpoint/gguf_reader.h"
#include "checkpoint/llama2c_reader.h"
#include "checkpoint/safetensors_reader.h"
#include "common/error.h"
#include "model/moe_config_loader.h"
#include "model/recurrent_gemma_config.h"

namespace tessera {

namespace {

// Architectures whose GGUF tensors follow llama.cpp's "llama" graph. llama.cpp's
// converter permutes Q/K of Hugging Face Llama checkpoints so that RoPE rotates
// adjacent pairs (rope type NORM); the other names here use the NEOX halves layout.
struct GgufArch {
  const char* name;
  kernels::RopeLayout rope;
};
constexpr GgufArch kGgufArchs[] = {
    {"llama", kernels::RopeLayout::kInterleaved},
    {"mistral", kernels::RopeLayout::kInterleaved},
};

ModelConfig config_from_gguf(const checkpoint::GgufReader& g) {
  const auto& md = g.metadata();
  const std::string arch = md.get_string("general.architecture");
  const GgufArch* known = nullptr;
  for (const GgufArch& a : kGgufArchs)
    if (arch == a.name) known = &a;
  TESSERA_REQUIRE(known != nullptr, ErrorKind::kUnsupported, g.path(), ": general.architecture '", arch,
                  "' is not supported by the dense decoder (supported: llama, mistral)");
  auto key = [&](const char* k) { return arch + "." + k; };
  ModelConfig c;
  c.architecture = arch;
  c.dim = md.get_u32(key("embedding_length"));
  c.n_layers = md.get_u32(key("block_count"));
  c.ffn_dim = md.get_u32(key("feed_forward_length"));
  c.n_heads = md.get_u32(key("attention.head_count"));
  c.n_kv_heads = md.opt_u32(key("attention.head_count_kv")).value_or(static_cast<uint32_t>(c.n_heads));
  TESSERA_REQUIRE(c.n_heads > 0, ErrorKind::kInvalidInput, g.path(), ": ", key("attention.head_count"), " is 0");
  c.head_dim = md.opt_u32(key("attention.key_length")).value_or(static_cast<uint32_t>(c.dim / c.n_heads));
  c.max_seq_len = md.opt_u32(key("context_length")).value_or(2048);
  c.norm_eps = md.opt_f32(key("attention.layer_norm_rms_epsilon")).value_or(1e-5f);
  c.rope_theta = md.opt_f32(key("rope.freq_base")).value_or(10000.0f);
  c.rope_dim = md.opt_u32(key("rope.dimension_count")).value_or(static_cast<uint32_t>(c.head_dim));
  c.rope_layout = known->rope;
  c.ffn = FfnKind::kSwiGlu;
  const auto& embd = g.info("token_embd.weight");
  TESSERA_REQUIRE(embd.shape.size() == 2, ErrorKind::kInvalidInput, g.path(), ": tensor token_embd.weight has shape ",
                  embd.shape_string(), ", expected [vocab, dim]");
  c.vocab_size = embd.shape[0];
  c.tied_embeddings = !g.contains("output.weight");
  c.moe = moe_config_from_gguf(g, arch);
  // llama.cpp's llama graph runs a plain (ungated) FFN when ffn_gate is absent.
  if (!c.moe.enabled() && !g.contains("blk.0.ffn_gate.weight")) c.ffn = FfnKind::kSilu;
  for (const char* bias : {"blk.0.attn_q.bias", "blk.0.attn_output.bias", "blk.0.ffn_up.bias"})
    TESSERA_REQUIRE(!g.contains(bias), ErrorKind::kUnsupported, g.path(), ": tensor ", bias,
                    " present: linear-layer biases are not supported by the dense decoder yet");
  if (md.has(key("rope.scaling.type"))) {
    const std::string scaling = md.get_string(key("rope.scaling.type"));
    TESSERA_REQUIRE(scaling == "none", ErrorKind::kUnsupported, g.path(), ": ", key("rope.scaling.type"), " = '",
                    scaling, "' is not supported yet");
  }
  return c;
}

ModelConfig config_from_llama2c(const checkpoint::Llama2cReader& r) {
  const auto& h = r.config();
  ModelConfig c;
  c.architecture = "llama";
  c.dim = h.dim;
  c.ffn_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.vocab_size = h.vocab_size;
  c.max_seq_len = h.seq_len;
  c.head_dim = h.n_heads > 0 ? h.dim / h.n_heads : 0;
  c.rope_dim = c.head_dim;
  c.rope_theta = 10000.0f;
  c.norm_eps = 1e-5f;
  c.rope_layout = kernels::RopeLayout::kInterleaved;  // llama2.c rotates adjacent pairs
  c.ffn = FfnKind::kSwiGlu;
  c.tied_embeddings = h.shared_classifier;
  return c;
}

}  // namespace

ModelConfig config_from_hf_json(const Json& j, const std::string& source) {
  auto field = [&](const char* name) -> const Json& {
    const Json* v = j.find(name);
    TESSERA_REQUIRE(v != nullptr && !v->is_null(), ErrorKind::kInvalidInput, source, ": missing field '", name, "'");
    return *v;
  };
  auto opt_int = [&](const char* name, int64_t dflt) {
    const Json* v = j.find(name);
    return v == nullptr || v->is_null() ? dflt : v->as_int(name);
  };
  auto opt_real = [&](const char* name, double dflt) {
    const Json* v = j.find(name);
    return v == nullptr || v->is_null() ? dflt : v->as_double(name);
  };
  const std::string model_type = j.find("model_type") ? field("model_type").as_string("model_type") : "";
  TESSERA_REQUIRE(model_type == "llama" || model_type == "mistral" || model_type == "mixtral",
                  ErrorKind::kUnsupported, source, ": model_type '", model_type,
                  "' is not supported by the decoder (supported: llama, mistral, mixtral)");
  ModelConfig c;
  c.architecture = model_type;
  c.dim = field("hidden_size").as_int("hidden_size");
  c.n_layers = field("num_hidden_layers").as_int("num_hidden_layers");
  c.n_heads = field("num_attention_heads").as_int("num_attention_heads");
  c.n_kv_heads = opt_int("num_key_value_heads", c.n_heads);
  c.ffn_dim = field("intermediate_size").as_int("intermediate_size");
  c.vocab_size = field("vocab_size").as_int("vocab_size");
  c.max_seq_len = opt_int("max_position_embeddings", 2048);
  TESSERA_REQUIRE(c.n_heads > 0, ErrorKind::kInvalidInput, source, ": num_attention_heads must be > 0");
  c.head_dim = opt_int("head_dim", c.dim / c.n_heads);
  c.rope_dim = c.head_dim;
  c.norm_eps = static_cast<float>(opt_real("rms_norm_eps", 1e-6));
  c.rope_theta = static_cast<float>(opt_real("rope_theta", 10000.0));
  c.rope_layout = kernels::RopeLayout::kHalves;  // transformers' rotate_half
  const Json* tie = j.find("tie_word_embeddings");
  c.tied_embeddings = tie != nullptr && !tie->is_null() && tie->as_bool("tie_word_embeddings");
  const std::string act = j.find("hidden_act") ? field("hidden_act").as_string("hidden_act") : "silu";
  if (act == "silu" || act == "swish") {
    c.ffn = FfnKind::kSwiGlu;
  } else if (act.rfind("gelu", 0) == 0) {
    c.ffn = FfnKind::kGeGlu;
  } else {
    TESSERA_FAIL(ErrorKind::kUnsupported, source, ": hidden_act '", act, "' is not supported (silu, gelu)");
  }
  for (const char* bias : {"attention_bias", "mlp_bias"}) {
    const Json* b = j.find(bias);
    TESSERA_REQUIRE(b == nullptr || b->is_null() || !b->as_bool(bias), ErrorKind::kUnsupported, source, ": ", bias,
                    " = true is not supported by the dense decoder yet");
  }
  // transformers >= 5 writes {"rope_parameters": {"rope_theta", "rope_type"}}; older
  // versions a top-level rope_theta and an optional rope_scaling object.
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    const Json* rp = j.find(key);
    if (rp == nullptr || rp->is_null()) continue;
    TESSERA_REQUIRE(rp->is_object(), ErrorKind::kInvalidInput, source, ": ", key, " must be an object");
    if (const Json* theta = rp->find("rope_theta"); theta != nullptr && !theta->is_null())
      c.rope_theta = static_cast<float>(theta->as_double("rope_theta"));
    const Json* type = rp->find("rope_type");
    if (type == nullptr) type = rp->find("type");
    const std::string kind = type == nullptr || type->is_null() ? "default" : type->as_string("rope_type");
    TESSERA_REQUIRE(kind == "default", ErrorKind::kUnsupported, source, ": ", key, ".rope_type '", kind,
                    "' is not supported yet (only default RoPE)");
  }
  if (model_type == "mixtral") c.moe = moe_config_from_hf_json(j, source);
  return c;
}

ModelConfig load_model_config(const checkpoint::Checkpoint& ck) {
  ModelConfig c;
  if (const auto* g = dynamic_cast<const checkpoint::GgufReader*>(&ck)) {
    c = config_from_gguf(*g);
  } else if (const auto* l = dynamic_cast<const checkpoint::Llama2cReader*>(&ck)) {
    c = config_from_llama2c(*l);
  } else if (const auto* s = dynamic_cast<const checkpoint::SafetensorsReader*>(&ck)) {
    TESSERA_REQUIRE(s->config() != nullptr, ErrorKind::kNotFound, ck.path(),
                    ": no config.json next to the safetensors; it is needed for the hyperparameters");
    if (is_recurrent_gemma_json(*s->config()))  // Griffin / RecurrentGemma (docs/RECURRENT_GEMMA.md)
      c = recurrent_gemma_config_from_json(*s->config(), ck.path() + " (config.json)").base;
    else
      c = config_from_hf_json(*s->config(), ck.path() + " (config.json)");
  } else {
    TESSERA_FAIL(ErrorKind::kUnsupported, ck.path(), ": unsupported checkpoint format '", ck.format(), "'");
  }
  c.validate(ck.path());
  return c;
}

}  // namespace tessera
