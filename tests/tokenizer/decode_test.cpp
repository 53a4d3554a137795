// Decoding, the streaming detokenizer, and tokenizer.json loading.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "common/json.h"
#include "tests/tokenizer/test_util.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace tessera {
namespace {

using test::data_path;

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    i += utf8_next(s, i, &cp);
    if (cp == kInvalidCodePoint) return false;
  }
  return true;
}

const Tokenizer& spm() {
  static const auto tok = Tokenizer::create(
      load_sentencepiece_model(data_path("tokenizers/tokenizer-llama-spm/tokenizer.model")));
  return *tok;
}

const Tokenizer& llama3() {
  static const auto tok = load_tokenizer(data_path("tokenizers/tokenizer-llama3-bpe"));
  return *tok;
}

TEST(TokenizerDecode, ByteTokensAndSpaces) {
  const Tokenizer& t = spm();
  EXPECT_EQ(t.decode_token(13), "\n");         // <0x0A>
  EXPECT_EQ(t.decode_token(3 + 0xE5), "\xE5");  // a raw byte
  EXPECT_EQ(t.decode_token(15043), " Hello");   // "▁Hello"
  EXPECT_EQ(t.decode_token(1), "");             // BOS decodes to nothing ...
  EXPECT_EQ(t.decode_token(1, /*keep_control=*/true), "<s>");  // ... unless asked
  EXPECT_EQ(t.decode(std::vector<int32_t>{1, 15043, 3186, 2}), "Hello world");
  // Only the first text token loses its dummy-prefix space.
  EXPECT_EQ(t.decode(std::vector<int32_t>{15043, 15043}), "Hello Hello");
}

TEST(TokenizerDecode, ByteLevelAlphabet) {
  const Tokenizer& t = llama3();
  EXPECT_EQ(t.decode_token(1917), " world");  // "Ġworld"
  EXPECT_EQ(t.decode_token(198), "\n");       // "Ċ"
  EXPECT_EQ(t.decode_token(128000), "");
  EXPECT_EQ(t.decode_token(128009, true), "<|eot_id|>");
  EXPECT_EQ(t.decode(std::vector<int32_t>{128000, 15339, 1917, 128009}), "hello world");
}

// Streamed output is valid UTF-8 at every emission and adds up to decode().
void check_stream(const Tokenizer& t, const std::string& text) {
  const auto ids = t.encode(text, true);
  StreamDecoder stream(t);
  std::string joined;
  for (int32_t id : ids) {
    const std::string piece = stream.push(id);
    EXPECT_TRUE(valid_utf8(piece)) << text;
    joined += piece;
  }
  joined += stream.finish();
  EXPECT_EQ(joined, text);
}

TEST(TokenizerDecode, StreamingHoldsBackPartialCharacters) {
  for (const auto& c : test::read_cases(data_path("tokenizers/tokenizer-llama-spm/ggml-vocab-llama-spm.gguf"))) {
    check_stream(spm(), c.text);
    check_stream(llama3(), c.text);
  }
  // 🦙 is four byte tokens in Llama 2: nothing is emitted until the last one.
  const auto ids = spm().encode("🦙", false);
  ASSERT_EQ(ids.size(), 5u);  // ▁ + 4 bytes
  StreamDecoder s(spm());
  EXPECT_EQ(s.push(ids[0]), "");  // the dummy-prefix space is stripped
  EXPECT_EQ(s.push(ids[1]), "");
  EXPECT_EQ(s.push(ids[2]), "");
  EXPECT_EQ(s.push(ids[3]), "");
  EXPECT_EQ(s.push(ids[4]), "🦙");
  // A byte that can never be valid comes out as U+FFFD, immediately.
  StreamDecoder s2(spm());
  EXPECT_EQ(s2.push(3 + 0xFF), "\xEF\xBF\xBD");
  EXPECT_EQ(s2.push(3 + 0xE5), "");
  EXPECT_EQ(s2.finish(), "\xEF\xBF\xBD");  // incomplete at the end
}

TEST(TokenizerDecode, InvalidUtf8InputRoundTrips) {
  const std::string bad = std::string("ok \xFF\xC3 x\xE2\x82") + "\x80\x80 end\xF0";
  const auto a = spm().encode(bad, false);
  EXPECT_EQ(spm().decode(a), bad);
  const auto b = llama3().encode(bad, false);
  EXPECT_EQ(llama3().decode(b), bad);
  auto l2c = Tokenizer::create(load_llama2c_tokenizer(data_path("tokenizers/tokenizer-llama-spm/tokenizer.bin")));
  EXPECT_EQ(l2c->decode(l2c->encode(bad, false)), bad);
}

// A tokenizer.json written from the Llama 3 encoder.json + vocab.bpe reproduces the
// published ids (covers the HF loader: vocab, merges as pairs, added_tokens, Split regex).
TEST(TokenizerDecode, HfTokenizerJsonLlama3) {
  const std::string dir = data_path("tokenizers/tokenizer-llama3-bpe/");
  const Vocab base = load_llama3_encoder(dir + "encoder.json", dir + "vocab.bpe");
  Json vocab = Json::object();
  auto& vo = vocab.mutable_object();
  for (int32_t i = 0; i < 128000; ++i) vo.emplace_back(base.tokens[static_cast<size_t>(i)], Json::integer(i));
  Json merges = Json::array();
  for (size_t i = 0; i < base.merges.size(); ++i) {
    if (i % 2) {
      merges.push_back(Json::string(base.merges[i].first + " " + base.merges[i].second));
    } else {
      merges.push_back(Json::array({Json::string(base.merges[i].first), Json::string(base.merges[i].second)}));
    }
  }
  Json model = Json::object();
  model.set("type", Json::string("BPE"));
  model.set("ignore_merges", Json::boolean(true));
  model.set("vocab", vocab);
  model.set("merges", merges);
  Json added = Json::array();
  for (int32_t i = 128000; i < 128256; ++i) {
    Json t = Json::object();
    t.set("id", Json::integer(i));
    t.set("content", Json::string(base.tokens[static_cast<size_t>(i)]));
    t.set("special", Json::boolean(true));
    added.push_back(t);
  }
  Json split = Json::object();
  split.set("type", Json::string("Split"));
  Json pattern = Json::object();
  pattern.set("Regex", Json::string(
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
  split.set("pattern", pattern);
  Json bl = Json::object();
  bl.set("type", Json::string("ByteLevel"));
  bl.set("use_regex", Json::boolean(false));
  Json pre = Json::object();
  pre.set("type", Json::string("Sequence"));
  pre.set("pretokenizers", Json::array({split, bl}));
  Json root = Json::object();
  root.set("added_tokens", added);
  root.set("pre_tokenizer", pre);
  root.set("model", model);
  const std::string path = ::testing::TempDir() + "/llama3_tokenizer.json";
  std::ofstream(path) << root.dump();

  auto tok = Tokenizer::create(load_hf_tokenizer_json(path));
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_TRUE(tok->is_eos(128009));
  for (const auto& c : test::read_cases(data_path("tokenizers/tokenizer-llama3-bpe/ggml-vocab-llama-bpe.gguf"))) {
    EXPECT_EQ(tok->encode(c.text, false), c.ids) << c.text;
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

// A SentencePiece-style tokenizer.json (Llama 2 "fast" layout): merge rank decides,
// "▁" prefix from the normalizer, byte fallback for unknown characters.
TEST(TokenizerDecode, HfTokenizerJsonSentencePieceStyle) {
  std::string path = ::testing::TempDir();
  path += "/spm_tokenizer.json";
  std::ofstream(path) << R"({
    "added_tokens": [{"id": 1, "content": "<s>", "special": true},
                     {"id": 2, "content": "</s>", "special": true}],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "pre_tokenizer": null,
    "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
    "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xC3>": 3, "<0xA9>": 4,
                "▁": 5, "a": 6, "b": 7, "ab": 8, "▁ab": 9, "▁a": 10},
      "merges": ["a b", "▁ ab", "▁ a"]}})";
  auto tok = Tokenizer::create(load_hf_tokenizer_json(path));
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->unk_id(), 0);
  // "▁ab▁a▁é": ab (rank 0) before ▁ab (rank 1); é has no piece -> bytes.
  EXPECT_EQ(tok->encode("ab a é"), (std::vector<int32_t>{1, 9, 10, 5, 3, 4}));
  EXPECT_EQ(tok->decode(tok->encode("ab a é")), "ab a é");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tessera
