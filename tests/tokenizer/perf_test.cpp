// Throughput: 1 MB of English with the Llama 3 vocabulary, and vocabulary loading.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "tests/tokenizer/test_util.h"
#include "tokenizer/loaders.h"

namespace tessera {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Deterministic English-like text: words drawn from a small list, with punctuation,
// digits and newlines (an LCG, no global state).
std::string english_text(size_t bytes) {
  static const char* const kWords[] = {
      "the", "little", "girl", "named", "Lily", "loved", "to", "play", "outside", "in", "park",
      "One", "day", "she", "saw", "a", "big", "dog", "running", "towards", "her", "happy",
      "and", "said", "Hello", "friend", "they", "were", "together", "wonderful", "adventure",
      "extraordinarily", "unbelievable", "computation", "tokenizer's", "don't", "2024", "3.14"};
  std::string s;
  s.reserve(bytes + 32);
  uint64_t x = 12345;
  while (s.size() < bytes) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    s += kWords[(x >> 33) % (sizeof(kWords) / sizeof(kWords[0]))];
    const unsigned r = (x >> 20) % 20;
    s += r == 0 ? ". " : r == 1 ? ", " : r == 2 ? "\n\n" : " ";
  }
  return s;
}

TEST(TokenizerPerf, Llama3LoadAndEncodeOneMegabyte) {
  const std::string dir = test::data_path("tokenizers/tokenizer-llama3-bpe/");
  auto t0 = std::chrono::steady_clock::now();
  auto tok = Tokenizer::create(load_llama3_encoder(dir + "encoder.json", dir + "vocab.bpe"));
  const double load_s = seconds_since(t0);
  const std::string text = english_text(1 << 20);
  t0 = std::chrono::steady_clock::now();
  const auto ids = tok->encode(text, false);
  const double enc_s = seconds_since(t0);
  std::printf("llama3: load 128k vocab + 280k merges %.3f s; encode %zu bytes -> %zu tokens in %.3f s\n",
              load_s, text.size(), ids.size(), enc_s);
  EXPECT_EQ(tok->decode(ids), text);
  // Generous bounds (shared CI machines); typical numbers are in docs/TOKENIZERS.md.
  EXPECT_LT(enc_s, 1.0);
  EXPECT_LT(load_s, 2.0);
}

TEST(TokenizerPerf, SpmEncodeOneMegabyte) {
  auto tok = Tokenizer::create(load_sentencepiece_model(test::data_path("tokenizers/tokenizer-llama-spm/tokenizer.model")));
  const std::string text = english_text(1 << 20);
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok->encode(text, false);
  const double enc_s = seconds_since(t0);
  std::printf("llama2 spm: encode %zu bytes -> %zu tokens in %.3f s\n", text.size(), ids.size(), enc_s);
  EXPECT_EQ(tok->decode(ids), text);
  EXPECT_LT(enc_s, 2.0);
}

}  // namespace
}  // namespace tessera
