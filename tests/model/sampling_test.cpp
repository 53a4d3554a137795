#include "worker/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"

namespace tessera {
namespace {

TEST(Sampling, XorshiftMatchesLlama2c) {
  // run.c: random_u32 on state 42 (values computed from run.c's definition).
  uint64_t s = 42;
  uint64_t x = 42;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  EXPECT_EQ(rng_next_u32(s), static_cast<uint32_t>((x * 0x2545F4914F6CDD1Dull) >> 32));
  EXPECT_EQ(s, x);
  for (int i = 0; i < 1000; ++i) {
    const float f = rng_next_f32(s);
    ASSERT_GE(f, 0.0f);
    ASSERT_LT(f, 1.0f);
  }
}

TEST(Sampling, GreedyTakesLowestIdOnTies) {
  std::vector<float> logits = {0.5f, 2.0f, 2.0f, -1.0f};
  uint64_t rng = 1;
  SamplingParams p;
  EXPECT_EQ(sample_token(logits, p, rng).token, 1);
  EXPECT_EQ(rng, 1u) << "greedy must not consume randomness";
}

TEST(Sampling, TopKOneAndTinyTopPAreGreedy) {
  std::vector<float> base = {0.1f, 3.0f, 2.9f, -2.0f, 1.0f};
  for (SamplerKind kind : {SamplerKind::kStandard, SamplerKind::kLlama2c}) {
    for (int i = 0; i < 50; ++i) {
      uint64_t rng = 1000 + i;
      std::vector<float> l = base;
      SamplingParams p;
      p.kind = kind;
      p.temperature = 1.0f;
      p.top_p = 1e-6f;
      EXPECT_EQ(sample_token(l, p, rng).token, 1);
      if (kind == SamplerKind::kStandard) {
        l = base;
        p.top_p = 1.0f;
        p.top_k = 1;
        EXPECT_EQ(sample_token(l, p, rng).token, 1);
      }
    }
  }
}

// Empirical frequencies follow softmax(logits / T) restricted by top-k / top-p.
TEST(Sampling, StandardSamplerFollowsTheTruncatedDistribution) {
  const std::vector<float> base = {1.0f, 2.0f, 0.5f, 1.5f, -1.0f, 0.0f};
  const float temperature = 0.7f;
  std::vector<double> p(base.size());
  double z = 0;
  for (size_t i = 0; i < base.size(); ++i) z += p[i] = std::exp(base[i] / temperature);
  for (double& v : p) v /= z;
  // top-k = 3 keeps ids 1, 3, 0.
  std::vector<double> expected(base.size(), 0.0);
  const double mass = p[1] + p[3] + p[0];
  for (int id : {1, 3, 0}) expected[id] = p[id] / mass;

  SamplingParams sp;
  sp.temperature = temperature;
  sp.top_k = 3;
  uint64_t rng = 7;
  const int n = 200000;
  std::vector<int> count(base.size(), 0);
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = base;
    ++count[sample_token(l, sp, rng).token];
  }
  double chi2 = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    if (expected[i] == 0) {
      EXPECT_EQ(count[i], 0) << "id " << i << " is outside the top-k";
      continue;
    }
    const double e = expected[i] * n;
    chi2 += (count[i] - e) * (count[i] - e) / e;
  }
  EXPECT_LT(chi2, 13.8) << "chi-square with 2 degrees of freedom, p = 0.001";
}

TEST(Sampling, LogprobsAreNormalisedAndSorted) {
  std::vector<float> l = {0.0f, 1.0f, 2.0f, 3.0f};
  SamplingParams p;
  p.n_logprobs = 4;
  uint64_t rng = 3;
  SampleResult r = sample_token(l, p, rng);
  ASSERT_EQ(r.top.size(), 4u);
  double total = 0;
  for (const auto& t : r.top) total += std::exp(t.logprob);
  EXPECT_NEAR(total, 1.0, 1e-6);
  EXPECT_EQ(r.top[0].token, 3);
  EXPECT_FLOAT_EQ(r.logprob, r.top[0].logprob);
}

TEST(Sampling, RejectsBadParameters) {
  std::vector<float> l = {0.0f, 1.0f};
  uint64_t rng = 3;
  SamplingParams p;
  p.temperature = -1.0f;
  EXPECT_THROW(sample_token(l, p, rng), Error);
  p.temperature = NAN;
  EXPECT_THROW(sample_token(l, p, rng), Error);
}

}  // namespace
}  // namespace tessera
