#include "sharding/plan.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace tessera {
namespace {

ModelConfig stories260k() {
  ModelConfig c;
  c.architecture = "llama";
  c.dim = 64;
  c.n_layers = 5;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 8;
  c.ffn_dim = 172;
  c.vocab_size = 512;
  c.max_seq_len = 512;
  c.rope_dim = 8;
  return c;
}

TEST(ShardPlan, EverySplitCoversTheModelExactlyOnce) {
  const ModelConfig c = stories260k();
  for (int tp : {1, 2, 4}) {
    for (int pp : {1, 2, 3, 4, 5}) {
      std::vector<int> layer_owner(c.n_layers, 0), vocab_owner(c.vocab_size, 0), ffn_owner(c.ffn_dim, 0),
          q_owner(c.n_heads, 0);
      for (int pr = 0; pr < pp; ++pr) {
        for (int tr = 0; tr < tp; ++tr) {
          const ShardPlan p = make_shard_plan(c, {tp, pp, tr, pr});
          if (tr == 0)
            for (int64_t l = p.layer_begin; l < p.layer_end; ++l) ++layer_owner[l];
          if (pr == 0) {
            for (int64_t v = p.vocab_begin; v < p.vocab_begin + p.vocab_size; ++v) ++vocab_owner[v];
            for (int64_t f = p.ffn_begin; f < p.ffn_begin + p.ffn_size; ++f) ++ffn_owner[f];
            for (int64_t h = p.q_head_begin; h < p.q_head_begin + p.n_q_heads; ++h) ++q_owner[h];
          }
          // Every local query head's KV head is held locally.
          const int64_t group = c.n_heads / c.n_kv_heads;
          for (int64_t h = p.q_head_begin; h < p.q_head_begin + p.n_q_heads; ++h) {
            EXPECT_GE(h / group, p.kv_head_begin);
            EXPECT_LT(h / group, p.kv_head_begin + p.n_kv_heads);
          }
          EXPECT_GE(p.n_layers(), c.n_layers / pp);
        }
      }
      for (int v : layer_owner) EXPECT_EQ(v, 1) << "tp " << tp << " pp " << pp;
      for (int v : vocab_owner) EXPECT_EQ(v, 1);
      for (int v : ffn_owner) EXPECT_EQ(v, 1);
      for (int v : q_owner) EXPECT_EQ(v, 1);
    }
  }
}

TEST(ShardPlan, KvHeadsAreReplicatedWhenTpExceedsThem) {
  ModelConfig c = stories260k();
  c.n_kv_heads = 1;  // MQA
  c.ffn_dim = 176;
  for (int r = 0; r < 8; ++r) {
    const ShardPlan p = make_shard_plan(c, {8, 1, r, 0});
    EXPECT_EQ(p.n_q_heads, 1);
    EXPECT_EQ(p.n_kv_heads, 1);
    EXPECT_EQ(p.kv_head_begin, 0);
  }
  c.n_kv_heads = 2;
  EXPECT_EQ(make_shard_plan(c, {8, 1, 5, 0}).kv_head_begin, 1);
}

TEST(ShardPlan, SplitsTheModelCannotTakeSayWhy) {
  const ModelConfig c = stories260k();
  auto expect_why = [&](int tp, int pp, const char* why, int64_t block = 1) {
    try {
      validate_split(c, tp, pp, block);
      ADD_FAILURE() << "tp " << tp << " pp " << pp << " should be refused";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  expect_why(3, 1, "query heads");
  expect_why(8, 1, "FFN");  // 172 hidden units over 8 ranks
  expect_why(1, 6, "layers");
  expect_why(2, 1, "quantisation blocks", 32);
  ModelConfig odd = c;
  odd.n_heads = 12;
  odd.n_kv_heads = 6;
  odd.ffn_dim = 176;
  EXPECT_THROW(validate_split(odd, 4, 1), Error);  // 6 KV heads over 4 ranks
  EXPECT_NO_THROW(validate_split(odd, 2, 1));
}

}  // namespace
}  // namespace tessera
