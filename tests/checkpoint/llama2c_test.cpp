// llama2.c reader: legacy and version 1 layouts, tied / untied classifier, bad headers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "checkpoint/llama2c_reader.h"
#include "common/error.h"
#include "tests/checkpoint/test_files.h"

namespace tessera::checkpoint {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::error_of;
using testing::make_llama2c;
using testing::patch;

Llama2cConfig small() {
  Llama2cConfig c;
  c.dim = 8;
  c.hidden_dim = 12;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 10;
  c.seq_len = 6;
  return c;
}

float first_float(const Checkpoint& ck, const std::string& name) {
  float v;
  std::memcpy(&v, ck.data(name).data, 4);
  return v;
}

TEST(Llama2c, LegacyTiedLayout) {
  const std::vector<uint8_t> b = make_llama2c(small(), /*tied=*/true);
  Llama2cReader r(b, "m.bin");
  EXPECT_EQ(r.config().version, 0);
  EXPECT_TRUE(r.config().shared_classifier);
  EXPECT_EQ(r.config().kv_dim(), 4);
  // Float index of each tensor's first element in the legacy order.
  const int64_t emb = 10 * 8, att = 2 * 8, wq = 2 * 64, wk = 2 * 32, wv = wk, wo = wq, ffn = att;
  EXPECT_EQ(first_float(r, "token_embd.weight"), 0.f);
  EXPECT_EQ(first_float(r, "blk.0.attn_norm.weight"), emb);
  EXPECT_EQ(first_float(r, "blk.1.attn_norm.weight"), emb + 8);
  EXPECT_EQ(first_float(r, "blk.0.attn_q.weight"), emb + att);
  EXPECT_EQ(first_float(r, "blk.1.attn_k.weight"), emb + att + wq + 32);
  EXPECT_EQ(first_float(r, "blk.0.attn_output.weight"), emb + att + wq + wk + wv);
  EXPECT_EQ(first_float(r, "blk.0.ffn_norm.weight"), emb + att + wq + wk + wv + wo);
  const int64_t w1 = emb + att + wq + wk + wv + wo + ffn;
  EXPECT_EQ(first_float(r, "blk.0.ffn_gate.weight"), w1);
  EXPECT_EQ(first_float(r, "blk.0.ffn_down.weight"), w1 + 2 * 96);
  EXPECT_EQ(first_float(r, "blk.0.ffn_up.weight"), w1 + 4 * 96);
  EXPECT_EQ(first_float(r, "output_norm.weight"), w1 + 6 * 96);
  EXPECT_EQ(r.info("blk.1.attn_k.weight").shape, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(r.info("blk.1.ffn_down.weight").shape, (std::vector<int64_t>{8, 12}));
  EXPECT_EQ(r.info("freq_cis_real").shape, (std::vector<int64_t>{6, 1}));
  EXPECT_EQ(r.info("output.weight").offset, r.info("token_embd.weight").offset);
  EXPECT_EQ(r.total_bytes() + 28, b.size());  // the tied classifier is counted once
}

TEST(Llama2c, LegacyUntied) {
  const std::vector<uint8_t> b = make_llama2c(small(), /*tied=*/false);
  Llama2cReader r(b, "m.bin");
  EXPECT_FALSE(r.config().shared_classifier);
  EXPECT_EQ(r.config().vocab_size, 10);
  EXPECT_EQ(r.info("output.weight").offset + r.info("output.weight").size, b.size());
  EXPECT_NE(r.info("output.weight").offset, r.info("token_embd.weight").offset);
}

TEST(Llama2c, Version1) {
  for (bool tied : {true, false}) {
    const std::vector<uint8_t> b = make_llama2c(small(), tied, 1);
    Llama2cReader r(b, "v1.bin");
    EXPECT_EQ(r.config().version, 1);
    EXPECT_EQ(r.config().shared_classifier, tied);
    EXPECT_EQ(r.info("blk.0.attn_norm.weight").offset, 256u);
    EXPECT_EQ(first_float(r, "blk.0.ffn_norm.weight"), 16.f);
    EXPECT_EQ(first_float(r, "output_norm.weight"), 32.f);
    EXPECT_EQ(first_float(r, "token_embd.weight"), 40.f);
    EXPECT_EQ(first_float(r, "blk.0.attn_q.weight"), 120.f);
    EXPECT_FALSE(r.contains("freq_cis_real"));
  }
}

TEST(Llama2c, Version2Unsupported) {
  std::vector<uint8_t> b = make_llama2c(small(), true, 1);
  patch<int32_t>(b, 4, 2);
  try {
    Llama2cReader(b, "v2.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_THAT(e.what(), AllOf(HasSubstr("v2.bin"), HasSubstr("version 2")));
  }
  patch<int32_t>(b, 4, 7);
  EXPECT_THAT(error_of([&] { Llama2cReader(b, "v7.bin"); }), HasSubstr("version 7"));
}

TEST(Llama2c, BadHeaders) {
  std::vector<uint8_t> b = make_llama2c(small(), true);
  patch<int32_t>(b, 12, 3);  // n_heads 3 does not divide dim 8
  EXPECT_THAT(error_of([&] { Llama2cReader(b, "h.bin"); }),
              AllOf(HasSubstr("h.bin"), HasSubstr("not divisible by n_heads 3")));

  b = make_llama2c(small(), true);
  patch<int32_t>(b, 16, 3);  // n_kv_heads 3 does not divide n_heads 4
  EXPECT_THAT(error_of([&] { Llama2cReader(b, "h.bin"); }), HasSubstr("n_kv_heads 3"));

  b = make_llama2c(small(), true);
  patch<int32_t>(b, 4, 13);  // hidden_dim inconsistent with the file size
  EXPECT_THAT(error_of([&] { Llama2cReader(b, "h.bin"); }),
              AllOf(HasSubstr("hidden_dim=13"), HasSubstr("but the file has")));

  b = make_llama2c(small(), true);
  patch<int32_t>(b, 8, 0x7fffffff);  // absurd n_layers
  EXPECT_THAT(error_of([&] { Llama2cReader(b, "h.bin"); }), HasSubstr("but the file has"));

  b = make_llama2c(small(), true);
  patch<int32_t>(b, 0, -8);
  EXPECT_THAT(error_of([&] { Llama2cReader(b, "h.bin"); }),
              AllOf(HasSubstr("dim"), HasSubstr("must be positive"), HasSubstr("byte offset 0")));

  b = make_llama2c(small(), true);
  patch<int32_t>(b, 20, INT32_MIN);
  EXPECT_THAT(error_of([&] { Llama2cReader(b, "h.bin"); }), HasSubstr("vocab_size"));

  b = make_llama2c(small(), true);
  patch<int32_t>(b, 0, 1 << 30);
  patch<int32_t>(b, 4, 1 << 30);
  patch<int32_t>(b, 12, 1);
  patch<int32_t>(b, 16, 1);
  EXPECT_THAT(error_of([&] { Llama2cReader(b, "h.bin"); }), HasSubstr("but the file has"));

  const std::vector<uint8_t> full = make_llama2c(small(), true);
  for (size_t n = 0; n < full.size(); n += (n < 64 ? 1 : 97)) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THAT(error_of([&] { Llama2cReader(cut, "cut.bin"); }), HasSubstr("cut.bin")) << n;
  }
}

}  // namespace
}  // namespace tessera::checkpoint
