// Bad files give tessera::Error naming the file and the field or offset.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "common/mapped_file.h"
#include "tests/tokenizer/test_util.h"
#include "tokenizer/loaders.h"

namespace tessera {
namespace {

using test::data_path;

std::string write_temp(const std::string& name, const std::string& bytes) {
  // Built with += : gcc 12 warns (-Wrestrict, bug 105329) on a + "/" + b.
  std::string path = ::testing::TempDir();
  path += "/";
  path += name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Runs f, expects a tessera::Error whose message contains every needle.
template <typename F>
void expect_error(F f, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

std::string spm_model_bytes() {
  return read_text_file(data_path("tokenizers/tokenizer-llama-spm/tokenizer.model"));
}

TEST(TokenizerErrors, TruncatedSentencePieceModel) {
  const std::string bytes = spm_model_bytes();
  const std::string path = write_temp("trunc.model", bytes.substr(0, bytes.size() / 2));
  expect_error([&] { load_sentencepiece_model(path); }, {path, "offset"});
}

TEST(TokenizerErrors, TruncatedVarint) {
  // Field 1 (pieces), length varint with the continuation bit set and nothing after.
  const std::string path = write_temp("varint.model", std::string("\x0a\xff\xff", 3));
  expect_error([&] { load_sentencepiece_model(path); }, {path, "truncated varint", "offset"});
}

TEST(TokenizerErrors, BadWireType) {
  // Key = field 1, wire type 3 (start group): not supported.
  const std::string path = write_temp("wire.model", std::string("\x0b\x00", 2));
  expect_error([&] { load_sentencepiece_model(path); }, {path, "wire type 3", "offset 0"});
}

TEST(TokenizerErrors, AbsurdLength) {
  // pieces with a 2^40 byte length.
  const std::string path = write_temp("len.model", std::string("\x0a\x80\x80\x80\x80\x80\x20", 7));
  expect_error([&] { load_sentencepiece_model(path); }, {path, "length", "exceeds"});
}

TEST(TokenizerErrors, SentencePieceCorruptionsNeverCrash) {
  std::string bytes = spm_model_bytes();
  // Flip bytes throughout the file; each load either works or throws tessera::Error.
  for (size_t at = 0; at < bytes.size(); at += bytes.size() / 97 + 1) {
    std::string b = bytes;
    b[at] = static_cast<char>(b[at] ^ 0xA5);
    const std::string path = write_temp("flip.model", b);
    try {
      load_sentencepiece_model(path);
    } catch (const Error&) {
    }
  }
}

TEST(TokenizerErrors, Llama2cLengthPastEnd) {
  std::string bytes = read_text_file(test::asset_path("models/stories260K/tok512.bin"));
  // Token 0 record starts at offset 4: score(4) then length(4) at offset 8.
  bytes[8] = '\x7f';  // length 127 > max_token_length 7
  const std::string path = write_temp("bad_tok.bin", bytes);
  expect_error([&] { load_llama2c_tokenizer(path); }, {path, "token 0", "offset 4", "length 127"});
  const std::string trunc = write_temp("trunc_tok.bin", read_text_file(test::asset_path("models/stories260K/tok512.bin")).substr(0, 3000));
  expect_error([&] { load_llama2c_tokenizer(trunc, 512); }, {trunc, "offset"});
  expect_error([&] { load_llama2c_tokenizer(trunc); }, {trunc, "offset"});
}

TEST(TokenizerErrors, TokenizerJsonWithoutModel) {
  const std::string path = write_temp("nomodel.json", R"({"version": "1.0", "added_tokens": []})");
  expect_error([&] { load_hf_tokenizer_json(path); }, {path, "\"model\""});
}

TEST(TokenizerErrors, MergeNamingUnknownToken) {
  const std::string path = write_temp("badmerge.json", R"({"model": {"type": "BPE",
      "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", "a zz"]},
      "pre_tokenizer": {"type": "ByteLevel"}})");
  expect_error([&] { Tokenizer::create(load_hf_tokenizer_json(path)); }, {path, "merge 1", "zz"});
  const std::string enc = write_temp("enc.json", R"({"a": 0, "b": 1, "ab": 2})");
  const std::string bpe = write_temp("bad.bpe", "#version: 0.2\na b\nq b\n");
  expect_error([&] { Tokenizer::create(load_bpe_encoder(enc, bpe)); }, {"bad.bpe", "merge 1", "\"q\""});
}

TEST(TokenizerErrors, UnsupportedModelKinds) {
  const std::string path = write_temp("unigram.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  expect_error([&] { load_hf_tokenizer_json(path); }, {path, "Unigram"});
  std::string missing = ::testing::TempDir();
  missing += "/does-not-exist";
  expect_error([&] { load_tokenizer(missing); }, {"does-not-exist"});
}

}  // namespace
}  // namespace tessera
