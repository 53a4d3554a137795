// The acceptance rule itself (worker/verify.h) on synthetic target / draft
// distributions: the emitted token follows the target's distribution exactly (a
// chi-square test over many fixed seeds), a rule with p/q replaced by 1 is caught by the
// same test, and greedy verification is plain argmax decoding.
#include "worker/verify.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "coordinator/speculative_generator.h"
#include "tests/speculative/chi_square.h"

namespace tessera {
namespace {

using testing::chi_square_fit;

constexpr int64_t kVocab = 12;

std::vector<float> target_logits(int row) {
  std::vector<float> l(kVocab);
  for (int64_t i = 0; i < kVocab; ++i) l[i] = std::sin(1.3f * static_cast<float>(i) + row) * 2.0f + 0.1f * i;
  return l;
}

// The draft: a distribution unlike the target's (mass on the high ids).
std::vector<float> draft_q() {
  std::vector<float> q(kVocab);
  float s = 0;
  for (int64_t i = 0; i < kVocab; ++i) s += q[i] = 0.2f + static_cast<float>(i * i);
  for (float& v : q) v /= s;
  return q;
}

// Counts of the first emitted token over n seeds: K = 2 drafts from q (or one-hot on a
// fixed guess when one_hot), verified against target rows.
std::vector<int64_t> first_token_counts(const SamplingParams& sp, bool one_hot, int n,
                                        AcceptanceRule rule = AcceptanceRule::kExact) {
  std::vector<float> logits;
  for (int r = 0; r < 3; ++r) {
    auto row = target_logits(r);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  const std::vector<float> q = draft_q();
  std::vector<int64_t> counts(kVocab, 0);
  for (int seed = 1; seed <= n; ++seed) {
    uint64_t draft_rng = 0x1234567ull * seed + 1;
    uint64_t rng = 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(seed) * 0x100000001B3ull);
    std::vector<int32_t> draft;
    std::vector<float> probs;
    for (int j = 0; j < 2; ++j) {
      if (one_hot) {
        draft.push_back(3 + j);
      } else {
        draft.push_back(draw_from(q, rng_next_f32(draft_rng)));
        probs.insert(probs.end(), q.begin(), q.end());
      }
    }
    VerifyOutcome v = verify_draft(logits, kVocab, draft, probs, sp, rng, rule);
    EXPECT_EQ(v.samples.size(), static_cast<size_t>(v.accepted + 1));
    ++counts[v.samples[0].token];
  }
  return counts;
}

std::vector<double> target_p(const SamplingParams& sp) {
  std::vector<float> p = sampling_distribution(target_logits(0), sp);
  return {p.begin(), p.end()};
}

TEST(VerifyRule, FirstTokenFollowsTheTargetAndABrokenRuleIsCaught) {
  for (SamplingParams sp : {SamplingParams{1.0f, 0, 1.0f, SamplerKind::kStandard, -1},
                            SamplingParams{0.7f, 6, 0.9f, SamplerKind::kStandard, -1},
                            SamplingParams{1.0f, 0, 0.8f, SamplerKind::kLlama2c, -1}}) {
    SCOPED_TRACE(::testing::Message() << "T " << sp.temperature << " top-k " << sp.top_k << " top-p " << sp.top_p);
    const auto p = target_p(sp);
    for (bool one_hot : {false, true}) {
      const auto good = chi_square_fit(first_token_counts(sp, one_hot, 20000), p);
      EXPECT_FALSE(good.rejects()) << "exact rule rejected: chi2 " << good.statistic << " df " << good.df;
      const auto bad = chi_square_fit(first_token_counts(sp, one_hot, 20000, AcceptanceRule::kAcceptAll), p);
      EXPECT_TRUE(bad.rejects()) << "broken rule not detected: chi2 " << bad.statistic << " df " << bad.df;
    }
  }
}

TEST(VerifyRule, SamplingDistributionMatchesTheSampler) {
  // The p the rule uses is what sample_token draws from.
  const SamplingParams sp{0.8f, 5, 0.85f, SamplerKind::kStandard, -1};
  const auto p = target_p(sp);
  std::vector<int64_t> counts(kVocab, 0);
  uint64_t rng = 77;
  for (int i = 0; i < 20000; ++i) {
    std::vector<float> l = target_logits(0);
    ++counts[sample_token(l, sp, rng).token];
  }
  EXPECT_FALSE(chi_square_fit(counts, p).rejects());
}

TEST(VerifyRule, GreedyIsArgmaxDecoding) {
  std::vector<float> logits;
  std::vector<int32_t> argmaxes;
  for (int r = 0; r < 4; ++r) {
    auto row = target_logits(r);
    argmaxes.push_back(argmax(row));
    logits.insert(logits.end(), row.begin(), row.end());
  }
  uint64_t rng = 5;
  // All three right: bonus = argmax of the last row.
  VerifyOutcome v = verify_draft(logits, kVocab, {argmaxes.begin(), argmaxes.begin() + 3}, {}, {}, rng);
  EXPECT_EQ(v.accepted, 3);
  EXPECT_EQ(v.extra_token, argmaxes[3]);
  EXPECT_EQ(rng, 5u);  // greedy draws nothing
  // Second one wrong: one accepted, the correction is the argmax there.
  std::vector<int32_t> d = {argmaxes[0], (argmaxes[1] + 1) % static_cast<int32_t>(kVocab), argmaxes[2]};
  v = verify_draft(logits, kVocab, d, {}, {}, rng);
  EXPECT_EQ(v.accepted, 1);
  EXPECT_EQ(v.extra_token, argmaxes[1]);
  ASSERT_EQ(v.samples.size(), 2u);
  EXPECT_EQ(v.samples[0].token, argmaxes[0]);
  EXPECT_EQ(v.samples[1].token, argmaxes[1]);
}

TEST(VerifyRule, NgramDraftProposesWhatFollowedTheLastOccurrence) {
  NgramDraft d(3, 1);
  std::vector<int32_t> ctx = {1, 2, 3, 4, 9, 2, 3, 4, 7, 8, 2, 3};
  std::vector<int32_t> tokens;
  std::vector<float> probs;
  uint64_t rng = 1;
  d.propose(ctx, 3, {}, rng, tokens, probs);
  EXPECT_EQ(tokens, (std::vector<int32_t>{4, 7, 8}));  // latest "2 3" is at 5..6
  EXPECT_TRUE(probs.empty());
  ctx = {5, 6, 7};
  d.propose(ctx, 3, {}, rng, tokens, probs);
  EXPECT_TRUE(tokens.empty());
}

}  // namespace
}  // namespace tessera
