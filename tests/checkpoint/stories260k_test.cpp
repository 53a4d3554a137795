// The bundled real model: the llama2.c .bin and the GGUF hold identical tensors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "checkpoint/gguf_reader.h"
#include "checkpoint/llama2c_reader.h"
#include "checkpoint/open.h"

namespace tessera::checkpoint {
namespace {

const std::string kDir = std::string(TESSERA_ASSETS) + "/models/stories260K/";

TEST(Stories260K, BinHeader) {
  Llama2cReader bin(kDir + "stories260K.bin");
  const Llama2cConfig& c = bin.config();
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.seq_len, 512);
  EXPECT_TRUE(c.shared_classifier);
  EXPECT_EQ(bin.total_elements(), 260032 + 4096);
}

TEST(Stories260K, GgufMetadata) {
  GgufReader g(kDir + "stories260K.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.architecture(), "llama");
  EXPECT_EQ(g.tensors().size(), 48u);
  const GgufMetadata& md = g.metadata();
  EXPECT_EQ(md.get_u32("llama.embedding_length"), 64u);
  EXPECT_EQ(md.get_u32("llama.block_count"), 5u);
  EXPECT_EQ(md.get_u32("llama.attention.head_count_kv"), 4u);
  EXPECT_FLOAT_EQ(md.get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(md.get_u32("tokenizer.ggml.bos_token_id"), 1u);
  const std::vector<std::string> tokens = md.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(md.get_f32_array("tokenizer.ggml.scores").size(), 512u);
  EXPECT_EQ(md.get_i32_array("tokenizer.ggml.token_type").size(), 512u);
  EXPECT_EQ(g.info("token_embd.weight").shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(g.info("blk.0.ffn_down.weight").shape, (std::vector<int64_t>{64, 172}));
}

TEST(Stories260K, EveryBinTensorEqualsGgufBitForBit) {
  auto bin = open_checkpoint(kDir + "stories260K.bin");
  auto gguf = open_checkpoint(kDir + "stories260K.gguf");
  EXPECT_EQ(bin->format(), "llama2c");
  EXPECT_EQ(gguf->format(), "gguf");
  int compared = 0;
  for (const TensorInfo& t : bin->tensors()) {
    if (t.name.rfind("freq_cis_", 0) == 0) continue;  // legacy RoPE tables: not in GGUF
    const TensorInfo* g = gguf->find(t.name);
    ASSERT_NE(g, nullptr) << t.name;
    EXPECT_EQ(g->shape, t.shape) << t.name;
    EXPECT_EQ(g->type_name, "F32") << t.name;
    ASSERT_EQ(g->size, t.size) << t.name;
    EXPECT_EQ(std::memcmp(bin->data(t.name).data, gguf->data(t.name).data, t.size), 0) << t.name;
    ++compared;
  }
  EXPECT_EQ(compared, 48);
  EXPECT_EQ(gguf->tensors().size(), 48u);
}

}  // namespace
}  // namespace tessera::checkpoint
