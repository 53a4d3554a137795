#include <gtest/gtest.h>

#include "common/error.h"
#include "common/json.h"
#include "model/config_loader.h"

namespace tessera {
namespace {

Json base() {
  return Json::parse(R"({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 8, "num_key_value_heads": 2, "intermediate_size": 160, "vocab_size": 320,
    "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "hidden_act": "silu"})");
}

TEST(HfConfig, ReadsTheHyperparameters) {
  const ModelConfig c = config_from_hf_json(base(), "config.json");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.ffn_dim, 160);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.rope_layout, kernels::RopeLayout::kHalves);
  EXPECT_FALSE(c.tied_embeddings);
}

TEST(HfConfig, ReadsRopeThetaInBothSpellings) {
  Json old = base();
  old.set("rope_theta", Json::number(500000.0));
  EXPECT_FLOAT_EQ(config_from_hf_json(old, "config.json").rope_theta, 500000.0f);
  Json v5 = base();
  v5.set("rope_parameters", Json::parse(R"({"rope_theta": 100000.0, "rope_type": "default"})"));
  EXPECT_FLOAT_EQ(config_from_hf_json(v5, "config.json").rope_theta, 100000.0f);
}

TEST(HfConfig, RejectsWhatItCannotRun) {
  auto expect_unsupported = [](Json j, const char* what) {
    try {
      (void)config_from_hf_json(j, "config.json");
      ADD_FAILURE() << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUnsupported) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  Json j = base();
  j.set("rope_parameters", Json::parse(R"({"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0})"));
  expect_unsupported(j, "llama3");
  j = base();
  j.set("attention_bias", Json::boolean(true));
  expect_unsupported(j, "attention_bias");
  j = base();
  j.set("model_type", Json::string("gpt2"));
  expect_unsupported(j, "gpt2");
  j = base();
  j.set("hidden_act", Json::string("relu"));
  expect_unsupported(j, "relu");
}

}  // namespace
}  // namespace tessera
