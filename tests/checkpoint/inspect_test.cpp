// inspect_checkpoint output for each format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "checkpoint/inspect.h"
#include "tests/checkpoint/test_files.h"

namespace tessera::checkpoint {
namespace {

using ::testing::HasSubstr;

const std::string kDir = std::string(TESSERA_ASSETS) + "/models/stories260K/";

TEST(Inspect, Gguf) {
  std::ostringstream os;
  inspect_checkpoint(kDir + "stories260K.gguf", os);
  const std::string s = os.str();
  EXPECT_THAT(s, HasSubstr("format:       gguf (version 3)"));
  EXPECT_THAT(s, HasSubstr("architecture: llama"));
  EXPECT_THAT(s, HasSubstr("llama.block_count (u32) = 5"));
  EXPECT_THAT(s, HasSubstr("tokenizer.ggml.tokens (array<string>[512]) = string[512] [\"<unk>\", \"<s>\", \"</s>\", \"<0x00>\", \"<0x01>\", ...]"));
  EXPECT_THAT(s, HasSubstr("token_embd.weight"));
  EXPECT_THAT(s, HasSubstr("[512, 64]"));
  EXPECT_THAT(s, HasSubstr("total: 48 tensors, 292800 parameters, 1171200 bytes"));
}

TEST(Inspect, Llama2cAndSafetensors) {
  std::ostringstream os;
  inspect_checkpoint(kDir + "stories260K.bin", os);
  EXPECT_THAT(os.str(), HasSubstr("format:       llama2c (version 0 (legacy header))"));
  EXPECT_THAT(os.str(), HasSubstr("n_kv_heads = 4"));
  EXPECT_THAT(os.str(), HasSubstr("blk.4.ffn_up.weight"));

  testing::TempDir dir;
  dir.write("model.safetensors", testing::make_safetensors({{"w", "F16", {2, 4}, 2}, {"ids", "I64", {3}, 8}},
                                                           R"({"format":"pt"})"));
  dir.write("config.json", std::string(R"({"architectures":["LlamaForCausalLM"],"vocab_size":32000})"));
  std::ostringstream st;
  inspect_checkpoint(dir.path(), st);
  EXPECT_THAT(st.str(), HasSubstr("format:       safetensors"));
  EXPECT_THAT(st.str(), HasSubstr("architecture: LlamaForCausalLM"));
  EXPECT_THAT(st.str(), HasSubstr("vocab_size = 32000"));
  EXPECT_THAT(st.str(), HasSubstr("format = \"pt\""));
  EXPECT_THAT(st.str(), HasSubstr("I64"));
  EXPECT_THAT(st.str(), HasSubstr("total: 2 tensors, 11 parameters, 40 bytes"));
}

}  // namespace
}  // namespace tessera::checkpoint
