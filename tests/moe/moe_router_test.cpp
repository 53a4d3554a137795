// Routers against hand-computed cases and the properties docs/MOE.md promises:
// top-k = transformers' Mixtral rule, hash = a fixed function of the token id
// (splitmix64's published outputs), balanced = every expert within one token of T/E.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/moe_router.h"

namespace tessera {
namespace {

TEST(MoeRouterTopK, HandComputedRenormalisedAndNot) {
  const float logits[] = {1, 3, 2, 0};
  Routing r;
  moe_route_topk(logits, 1, 4, 2, /*normalize=*/true, r);
  EXPECT_EQ(r.expert[0], 1);
  EXPECT_EQ(r.expert[1], 2);
  // e^3 / (e^3 + e^2) = 1 / (1 + e^-1)
  EXPECT_NEAR(r.gate[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(r.gate[1], 1.0 / (1.0 + std::exp(1.0)), 1e-6);
  moe_route_topk(logits, 1, 4, 2, /*normalize=*/false, r);
  const double z = std::exp(0.0) + std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(r.gate[0], std::exp(3.0) / z, 1e-6);
  EXPECT_NEAR(r.gate[1], std::exp(2.0) / z, 1e-6);
}

TEST(MoeRouterTopK, TiesPickTheLowerExpertAndRowsAreIndependent) {
  const float logits[] = {0, 0, 0, /**/ -1, 5, 5};
  Routing r;
  moe_route_topk(logits, 2, 3, 2, true, r);
  EXPECT_EQ(r.expert[0], 0);
  EXPECT_EQ(r.expert[1], 1);
  EXPECT_FLOAT_EQ(r.gate[0], 0.5f);
  EXPECT_EQ(r.expert[2], 1);
  EXPECT_EQ(r.expert[3], 2);
}

TEST(MoeRouterHash, SplitMix64PublishedOutputs) {
  // The first outputs of splitmix64 seeded with 0 (Vigna's reference splitmix64.c).
  uint64_t s = 0;
  EXPECT_EQ(moe_splitmix64(s), 0xe220a8397b1dcdafull);
  EXPECT_EQ(moe_splitmix64(s), 0x6e789e6aa1b965f4ull);
  EXPECT_EQ(moe_splitmix64(s), 0x06c45d188009454full);
}

TEST(MoeRouterHash, FixedFunctionOfTheTokenId) {
  const int32_t ids[] = {0, 7, 0, 300};
  Routing r;
  moe_route_hash(ids, 4, 16, 1, r);
  EXPECT_EQ(r.expert[0], 0xf);  // 0xe220a8397b1dcdaf mod 16
  EXPECT_EQ(r.expert[2], r.expert[0]);  // same id, same expert, wherever it sits in the batch
  EXPECT_FLOAT_EQ(r.gate[0], 1.0f);
  // A batch in another order (as another rank's share would be) routes each id alike.
  const int32_t other[] = {300, 7};
  Routing r2;
  moe_route_hash(other, 2, 16, 1, r2);
  EXPECT_EQ(r2.expert[0], r.expert[3]);
  EXPECT_EQ(r2.expert[1], r.expert[1]);
}

TEST(MoeRouterHash, KDistinctExpertsAndEvenSpread) {
  std::vector<int32_t> ids(8000);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  Routing r;
  moe_route_hash(ids.data(), 8000, 8, 8, r);  // k = E: a permutation per token
  for (int64_t t = 0; t < 8000; ++t) {
    std::vector<int> seen(8, 0);
    for (int j = 0; j < 8; ++j) ++seen[r.expert[t * 8 + j]];
    for (int e = 0; e < 8; ++e) ASSERT_EQ(seen[e], 1) << "token " << t;
  }
  moe_route_hash(ids.data(), 8000, 8, 1, r);
  const std::vector<int64_t> c = moe_expert_counts(r, 8);
  // Chi-square with 7 degrees of freedom; 24.3 is the 0.999 quantile.
  double chi = 0;
  for (const int64_t n : c) chi += (n - 1000.0) * (n - 1000.0) / 1000.0;
  EXPECT_LT(chi, 24.3);
}

TEST(MoeRouterBalanced, HandComputedTwoByTwo) {
  // Both tokens prefer expert 0; token 1 more strongly (6 vs 5), so the balanced plan
  // gives expert 0 to token 1: the assignment maximising the summed logits.
  const float logits[] = {5, 0, 6, 0};
  Routing r;
  moe_route_balanced(logits, 2, 2, 8, true, r);
  EXPECT_EQ(r.expert[0], 1);
  EXPECT_EQ(r.expert[1], 0);
  EXPECT_FLOAT_EQ(r.gate[0], 1.0f);
  moe_route_balanced(logits, 2, 2, 8, false, r);
  EXPECT_NEAR(r.gate[1], 1.0 / (1.0 + std::exp(-6.0)), 1e-6);  // softmax prob of expert 0 for token 1
}

TEST(MoeRouterBalanced, EveryExpertWithinOneTokenOfItsShare) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  for (const auto& [T, E] : {std::pair<int64_t, int64_t>{100, 8}, {5, 8}, {64, 64}, {513, 512}, {1000, 7}}) {
    std::vector<float> logits(T * E);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e) logits[t * E + e] = n(rng) + (e == 0 ? 10.0f : 0.0f);  // all prefer expert 0
    Routing r;
    moe_route_balanced(logits.data(), T, E, 8, true, r);
    const std::vector<int64_t> c = moe_expert_counts(r, E);
    int64_t total = 0;
    for (const int64_t x : c) {
      EXPECT_TRUE(x == T / E || x == T / E + 1) << "T " << T << " E " << E << ": an expert got " << x;
      total += x;
    }
    EXPECT_EQ(total, T);
  }
}

TEST(MoeRouterBalanced, KeepsAnAlreadyBalancedArgmax) {
  const int64_t T = 48, E = 16;
  std::vector<float> logits(T * E, 0.0f);
  for (int64_t t = 0; t < T; ++t) logits[t * E + (t * 5) % E] = 4.0f;
  Routing r;
  moe_route_balanced(logits.data(), T, E, 8, true, r);
  for (int64_t t = 0; t < T; ++t) EXPECT_EQ(r.expert[t], (t * 5) % E);
}

}  // namespace
}  // namespace tessera
