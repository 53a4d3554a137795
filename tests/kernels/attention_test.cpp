// Blocked attention vs the double-precision reference, merge exactness, masking.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/ops.h"
#include "kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace tessera::kernels::test {
namespace {

// A paged KV cache filled with random data plus the AttentionArgs pointing at it.
struct Problem {
  int64_t n_q, n_heads, n_kv_heads, head_dim, block_size, n_kv;
  std::vector<float> q, k, v, out, lse;
  std::vector<const float*> kb, vb;
  AttentionArgs args;

  Problem(std::mt19937& rng, int64_t n_q_, int64_t n_heads_, int64_t n_kv_heads_, int64_t head_dim_,
          int64_t block_size_, int64_t n_kv_)
      : n_q(n_q_), n_heads(n_heads_), n_kv_heads(n_kv_heads_), head_dim(head_dim_),
        block_size(block_size_), n_kv(n_kv_) {
    const int64_t blocks = (n_kv + block_size - 1) / block_size;
    q = random_vec(rng, n_q * n_heads * head_dim, -2.0f, 2.0f);
    // Blocks are stored in reverse order in memory: the block table must be honoured.
    k = random_vec(rng, blocks * block_size * n_kv_heads * head_dim);
    v = random_vec(rng, blocks * block_size * n_kv_heads * head_dim);
    for (int64_t b = 0; b < blocks; ++b) {
      kb.push_back(k.data() + (blocks - 1 - b) * block_size * n_kv_heads * head_dim);
      vb.push_back(v.data() + (blocks - 1 - b) * block_size * n_kv_heads * head_dim);
    }
    out.assign(n_q * n_heads * head_dim, 0.0f);
    lse.assign(n_q * n_heads, 0.0f);
    args.q = q.data();
    args.n_q = n_q;
    args.n_heads = n_heads;
    args.n_kv_heads = n_kv_heads;
    args.head_dim = head_dim;
    args.k_blocks = kb.data();
    args.v_blocks = vb.data();
    args.block_size = block_size;
    args.n_kv = n_kv;
    args.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    args.out = out.data();
    args.lse = lse.data();
  }
};

void expect_attention_close(const std::vector<float>& out, const std::vector<float>& lse,
                            const std::vector<float>& ref_out, const std::vector<float>& ref_lse,
                            const std::string& what) {
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_NEAR(out[i], ref_out[i], kAttnRel) << what << " out " << i;  // max|v| <= 1
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(ref_lse[i])) {
      ASSERT_EQ(lse[i], ref_lse[i]) << what << " lse " << i;
    } else {
      ASSERT_NEAR(lse[i], ref_lse[i], kAttnLseAbs) << what << " lse " << i;
    }
  }
}

class AttentionTest : public testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { TESSERA_SKIP_IF_UNSUPPORTED(GetParam()); }
};

TEST_P(AttentionTest, MatchesReference) {
  ScopedIsa scoped(GetParam());
  std::mt19937 rng(21);
  struct Case {
    int64_t n_q, heads, kv_heads, head_dim, block, n_kv, q_pos0, kv_pos0, window;
    bool causal;
    float softcap;
  };
  const Case cases[] = {
      {1, 4, 4, 64, 16, 37, 36, 0, 0, true, 0},      // decode, MHA
      {1, 8, 2, 128, 32, 300, 299, 0, 0, true, 0},   // decode, GQA
      {1, 4, 1, 40, 16, 50, 49, 0, 0, true, 0},      // decode, MQA, odd head_dim
      {3, 4, 2, 64, 16, 40, 37, 0, 0, true, 0},      // speculative verify
      {17, 4, 2, 64, 16, 17, 0, 0, 0, true, 0},      // prefill from scratch
      {17, 6, 3, 48, 8, 60, 43, 0, 0, true, 30.0f},  // prefill after a prefix, softcap
      {64, 2, 1, 64, 64, 64, 0, 0, 16, true, 0},     // sliding window
      {5, 2, 2, 32, 16, 33, 100, 70, 8, true, 0},    // window + KV offset (ring step)
      {9, 2, 1, 32, 16, 20, 0, 0, 0, false, 0},      // bidirectional
      {4, 2, 2, 16, 4, 10, 0, 5, 0, true, 0},        // queries that see no KV
      {130, 2, 2, 64, 16, 130, 0, 0, 0, true, 0},
      // long decode KV with few KV heads: split over KV across threads (flash decoding)
      {1, 4, 1, 64, 256, 5000, 4999, 0, 0, true, 0},      // MQA, paged
      {1, 8, 1, 128, 3000, 3000, 2999, 0, 0, true, 0},    // MQA, one contiguous block
      {1, 2, 1, 32, 64, 4000, 3999, 0, 1500, true, 0},    // window: some splits see nothing
      {2, 8, 2, 64, 128, 2500, 2498, 0, 0, true, 20.0f},  // 2 queries, GQA, softcap
  };
  for (const Case& c : cases) {
    for (int threads : {1, 2}) {
      Problem p(rng, c.n_q, c.heads, c.kv_heads, c.head_dim, c.block, c.n_kv);
      p.args.q_pos0 = c.q_pos0;
      p.args.kv_pos0 = c.kv_pos0;
      p.args.window = c.window;
      p.args.causal = c.causal;
      p.args.softcap = c.softcap;
      std::vector<float> ref_out(p.out.size()), ref_lse(p.lse.size());
      AttentionArgs ra = p.args;
      ra.out = ref_out.data();
      ra.lse = ref_lse.data();
      ref::attention(ra);
      ThreadPool pool(threads);
      attention(pool, p.args);
      expect_attention_close(p.out, p.lse, ref_out, ref_lse,
                             "n_q " + std::to_string(c.n_q) + " n_kv " + std::to_string(c.n_kv) +
                                 " threads " + std::to_string(threads));
      // lse is optional
      AttentionArgs no_lse = p.args;
      std::vector<float> out2(p.out.size());
      no_lse.out = out2.data();
      no_lse.lse = nullptr;
      attention(pool, no_lse);
      ASSERT_EQ(out2, p.out);
    }
  }
}

// Attending to KV [0, n) equals merging attention to [0, s) and [s, n).
TEST_P(AttentionTest, MergeOfSplitEqualsWhole) {
  ScopedIsa scoped(GetParam());
  std::mt19937 rng(22);
  ThreadPool pool(2);
  for (int64_t split : {1, 16, 29, 48}) {
    Problem p(rng, 6, 4, 2, 64, 16, 64);
    p.args.q_pos0 = 58;
    attention(pool, p.args);
    // Part a: the first split tokens; part b: the rest, with kv_pos0 = split.
    std::vector<float> ka(p.k.begin(), p.k.end()), va(p.v.begin(), p.v.end());
    const int64_t tok = 2 * 64;
    std::vector<float> kcat(64 * tok), vcat(64 * tok);
    for (int64_t j = 0; j < 64; ++j) {
      std::copy_n(p.kb[j / 16] + (j % 16) * tok, tok, kcat.begin() + j * tok);
      std::copy_n(p.vb[j / 16] + (j % 16) * tok, tok, vcat.begin() + j * tok);
    }
    const float* kA = kcat.data();
    const float* vA = vcat.data();
    const float* kB = kcat.data() + split * tok;
    const float* vB = vcat.data() + split * tok;
    std::vector<float> oa(p.out.size()), la(p.lse.size()), ob(p.out.size()), lb(p.lse.size());
    AttentionArgs a = p.args;
    a.k_blocks = &kA, a.v_blocks = &vA, a.block_size = split, a.n_kv = split;
    a.out = oa.data(), a.lse = la.data();
    attention(pool, a);
    AttentionArgs b = p.args;
    b.k_blocks = &kB, b.v_blocks = &vB, b.block_size = 64 - split, b.n_kv = 64 - split;
    b.kv_pos0 = split;
    b.out = ob.data(), b.lse = lb.data();
    attention(pool, b);
    merge_attention(oa.data(), la.data(), ob.data(), lb.data(), 6 * 4, 64);
    expect_attention_close(oa, la, p.out, p.lse, "split " + std::to_string(split));
  }
}

// Future tokens (causal) and tokens outside the window must not influence the output.
TEST_P(AttentionTest, MaskedTokensHaveNoInfluence) {
  ScopedIsa scoped(GetParam());
  std::mt19937 rng(23);
  ThreadPool pool(1);
  Problem p(rng, 4, 2, 1, 32, 8, 40);
  p.args.q_pos0 = 20;  // queries at 20..23 see KV 0..23 (window: > p - 6)
  p.args.window = 6;
  attention(pool, p.args);
  const auto before = p.out;
  for (int64_t j = 0; j < 40; ++j) {
    if (j > 14 && j <= 20) continue;  // visible to every query
    if (j > 23 || j <= 14) {
      float* kt = const_cast<float*>(p.kb[j / 8]) + (j % 8) * 32;
      float* vt = const_cast<float*>(p.vb[j / 8]) + (j % 8) * 32;
      for (int i = 0; i < 32; ++i) kt[i] = 50.0f, vt[i] = 1e3f;
    }
  }
  attention(pool, p.args);
  EXPECT_EQ(before, p.out);
}

TEST(MergeAttention, EmptyPartsAndExactWeights) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> oa = {1, 2}, la = {-inf}, ob = {3, 4}, lb = {0.5f};
  merge_attention(oa.data(), la.data(), ob.data(), lb.data(), 1, 2);
  EXPECT_EQ(oa, (std::vector<float>{3, 4}));
  EXPECT_EQ(la[0], 0.5f);
  std::vector<float> oc = {5, 6}, lc = {-inf};
  merge_attention(oa.data(), la.data(), oc.data(), lc.data(), 1, 2);
  EXPECT_EQ(oa, (std::vector<float>{3, 4}));
  std::vector<float> od = {1, 0}, ld = {std::log(3.0f)}, oe = {0, 1}, le = {0.0f};
  merge_attention(od.data(), ld.data(), oe.data(), le.data(), 1, 2);
  EXPECT_NEAR(od[0], 0.75f, 1e-7);
  EXPECT_NEAR(od[1], 0.25f, 1e-7);
  EXPECT_NEAR(ld[0], std::log(4.0f), 1e-7);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttentionTest, testing::ValuesIn(all_isas()), IsaName());

}  // namespace
}  // namespace tessera::kernels::test
