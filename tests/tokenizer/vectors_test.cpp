// Published test vectors: llama.cpp's 47 vocab cases for Llama 2 SPM (GGUF,
// tokenizer.model, llama2.c tokenizer.bin), GPT-2 and Llama 3, and the stories260K
// prompts from assets/models/stories260K/README.md.
#include <gtest/gtest.h>

#include "tests/tokenizer/test_util.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"

namespace tessera {
namespace {

using test::asset_path;
using test::data_path;
using test::ids_str;

const char kSpmStem[] = "tokenizers/tokenizer-llama-spm/ggml-vocab-llama-spm.gguf";
const char kGpt2Stem[] = "tokenizers/tokenizer-gpt2-bpe/ggml-vocab-gpt-2.gguf";
const char kLlama3Stem[] = "tokenizers/tokenizer-llama3-bpe/ggml-vocab-llama-bpe.gguf";

// Encodes every case without special tokens; returns the number of mismatches and
// checks decode(encode(s)) == s.
int check_cases(const Tokenizer& tok, const std::string& stem, bool check_round_trip = true) {
  const auto cases = test::read_cases(data_path(stem));
  EXPECT_EQ(cases.size(), 47u);
  int bad = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = tok.encode(cases[i].text, /*add_special=*/false);
    if (ids != cases[i].ids) {
      ++bad;
      ADD_FAILURE() << stem << " case " << i << " \"" << cases[i].text << "\"\n  got     "
                    << ids_str(ids) << "\n  expected" << ids_str(cases[i].ids);
    }
    if (check_round_trip) {
      EXPECT_EQ(tok.decode(ids), cases[i].text) << stem << " case " << i;
    }
  }
  return bad;
}

TEST(TokenizerVectors, LlamaSpmFromGguf) {
  auto tok = Tokenizer::create(load_gguf_tokenizer(data_path("tokenizers/tokenizer-llama-spm/ggml-vocab-llama-spm.gguf")));
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(check_cases(*tok, kSpmStem), 0);
}

TEST(TokenizerVectors, LlamaSpmFromSentencePieceModel) {
  auto tok = Tokenizer::create(load_sentencepiece_model(data_path("tokenizers/tokenizer-llama-spm/tokenizer.model")));
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->unk_id(), 0);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->pad_id(), -1);
  EXPECT_EQ(check_cases(*tok, kSpmStem), 0);
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int32_t>{1, 15043, 3186}));
}

TEST(TokenizerVectors, LlamaSpmFromLlama2cBinWithSpmSemantics) {
  Vocab v = load_llama2c_tokenizer(data_path("tokenizers/tokenizer-llama-spm/tokenizer.bin"), 32000);
  auto tok = Tokenizer::create(llama2c_to_spm(std::move(v)));
  EXPECT_EQ(check_cases(*tok, kSpmStem), 0);
}

// llama2.c's own encode on the Llama 2 vocab: documented in docs/TOKENIZERS.md.
// It agrees with the Hugging Face ids on every published case.
TEST(TokenizerVectors, LlamaSpmFromLlama2cBinWithLlama2cSemantics) {
  auto tok = Tokenizer::create(load_llama2c_tokenizer(data_path("tokenizers/tokenizer-llama-spm/tokenizer.bin")));
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(check_cases(*tok, kSpmStem), 0);
}

TEST(TokenizerVectors, Gpt2FromGguf) {
  auto tok = Tokenizer::create(load_gguf_tokenizer(data_path("tokenizers/tokenizer-gpt2-bpe/ggml-vocab-gpt-2.gguf")));
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(check_cases(*tok, kGpt2Stem), 0);
}

TEST(TokenizerVectors, Llama3FromEncoderJson) {
  const std::string dir = data_path("tokenizers/tokenizer-llama3-bpe/");
  auto tok = Tokenizer::create(load_llama3_encoder(dir + "encoder.json", dir + "vocab.bpe"));
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(check_cases(*tok, kLlama3Stem), 0);
  // Ollama's extra cases (tokenizer/bytepairencoding_test.go).
  EXPECT_EQ(tok->encode("hello world", false), (std::vector<int32_t>{15339, 1917}));
  EXPECT_EQ(tok->encode("0", false), (std::vector<int32_t>{15}));
  EXPECT_EQ(tok->encode("00", false), (std::vector<int32_t>{410}));
  EXPECT_EQ(tok->encode("000", false), (std::vector<int32_t>{931}));
  EXPECT_EQ(tok->encode("0000", false), (std::vector<int32_t>{931, 15}));
  // Special tokens.
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_TRUE(tok->is_eos(128001));
  EXPECT_TRUE(tok->is_eos(128009));
  EXPECT_TRUE(tok->is_eos(128008));
  EXPECT_FALSE(tok->is_eos(128006));
  EXPECT_EQ(tok->id_to_piece(128006), "<|start_header_id|>");
  EXPECT_EQ(tok->id_to_piece(128255), "<|reserved_special_token_247|>");
  EXPECT_EQ(tok->encode("hello world"), (std::vector<int32_t>{128000, 15339, 1917}));
  EXPECT_EQ(tok->encode("<|start_header_id|>user<|end_header_id|>", false, /*parse_special=*/true),
            (std::vector<int32_t>{128006, 882, 128007}));
  // Without parse_special the text is ordinary text.
  const auto plain = tok->encode("<|eot_id|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok->decode(plain), "<|eot_id|>");
}

TEST(TokenizerVectors, Stories260KLlama2c) {
  auto tok = Tokenizer::create(load_llama2c_tokenizer(asset_path("models/stories260K/tok512.bin"), 512));
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->encode("Once upon a time"), (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok->encode("There was a big"), (std::vector<int32_t>{1, 291, 276, 286, 261, 370}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 403, 407, 261, 378}), "Once upon a time");
  EXPECT_EQ(tok->encode("", true), (std::vector<int32_t>{1}));
}

TEST(TokenizerVectors, Stories260KGgufMatchesTokBin) {
  auto gguf = Tokenizer::create(load_gguf_tokenizer(asset_path("models/stories260K/stories260K.gguf")));
  auto bin = Tokenizer::create(load_llama2c_tokenizer(asset_path("models/stories260K/tok512.bin"), 512));
  EXPECT_EQ(gguf->vocab_size(), 512);
  EXPECT_EQ(gguf->encode("Once upon a time"), (std::vector<int32_t>{1, 403, 407, 261, 378}));
  const auto cases = test::read_cases(data_path(kSpmStem));
  for (const auto& c : cases) {
    EXPECT_EQ(gguf->encode(c.text), bin->encode(c.text)) << c.text;
    EXPECT_EQ(gguf->decode(gguf->encode(c.text)), c.text);
    EXPECT_EQ(bin->decode(bin->encode(c.text)), c.text);
  }
}

TEST(TokenizerVectors, LoadTokenizerFromDirectory) {
  auto l3 = load_tokenizer(data_path("tokenizers/tokenizer-llama3-bpe"));
  EXPECT_EQ(l3->vocab_size(), 128256);
  EXPECT_EQ(l3->encode("hello world"), (std::vector<int32_t>{128000, 15339, 1917}));
  auto spm = load_tokenizer(data_path("tokenizers/tokenizer-llama-spm"));  // tokenizer.model
  EXPECT_EQ(spm->encode("Hello world"), (std::vector<int32_t>{1, 15043, 3186}));
  auto gpt2 = load_tokenizer(data_path("tokenizers/tokenizer-gpt2-bpe"));  // the .gguf
  EXPECT_EQ(gpt2->vocab_size(), 50257);
  auto stories = load_tokenizer(asset_path("models/stories260K"));  // tok512.bin
  EXPECT_EQ(stories->encode("Once upon a time"), (std::vector<int32_t>{1, 403, 407, 261, 378}));
}

}  // namespace
}  // namespace tessera
