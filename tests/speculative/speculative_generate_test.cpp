// Speculative generation on the bundled stories260K (vocabulary 512): greedy output is
// identical to plain decoding for every draft kind; sampled tokens follow the target's
// distribution (chi-square against plain sampling over fixed seeds, and a broken rule is
// caught); the KV of accepted positions after rejections equals plain decoding's.
#include "coordinator/speculative_generator.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "coordinator/generator.h"
#include "coordinator/step_runner.h"
#include "kernels/q8_packed.h"
#include "model/llama.h"
#include "model/loader.h"
#include "tests/speculative/chi_square.h"
#include "worker/verify.h"
#include "worker/worker.h"

namespace tessera {
namespace {

const std::string kDir = std::string(TESSERA_ASSETS) + "/models/stories260K/";

WorkerOptions small_options() {
  WorkerOptions o;
  o.threads = 1;
  o.max_kv_tokens = 256;
  return o;
}

// One target for the whole binary (loading is cheap, but keep the test fast).
Worker& target() {
  static Worker w(kDir + "stories260K.bin", small_options());
  return w;
}

// The same target with the deliberately broken acceptance rule (p/q replaced by 1).
Worker& broken_target() {
  static Worker w(kDir + "stories260K.bin", [] {
    WorkerOptions o = small_options();
    o.acceptance = AcceptanceRule::kAcceptAll;
    return o;
  }());
  return w;
}

const std::vector<std::vector<int32_t>> kPrompts = {
    {1}, {1, 403, 407, 261, 378}, {1, 365, 372, 261, 1227 % 512, 268, 341}};

std::vector<int32_t> plain(const std::vector<int32_t>& prompt, const GenerateOptions& opt, Worker& w = target()) {
  Generator g(w);
  std::vector<int32_t> out;
  g.generate(prompt, opt, [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  return out;
}

std::vector<int32_t> speculative(Draft& draft, SpeculativeOptions so, const std::vector<int32_t>& prompt,
                                 const GenerateOptions& opt, SpeculativeStats* stats = nullptr,
                                 Worker& tgt = target()) {
  LocalStepRunner runner(tgt);
  SpeculativeGenerator g(runner, draft, so);
  std::vector<int32_t> out;
  g.generate(prompt, opt, [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  if (stats != nullptr) *stats = g.stats();
  return out;
}

TEST(Speculative, GreedyIsIdenticalForEveryDraftKind) {
  GenerateOptions opt;
  opt.max_new_tokens = 80;
  std::vector<std::unique_ptr<Draft>> drafts;
  drafts.push_back(make_draft(kDir + "stories260K.gguf", "", small_options(), 512));
  drafts.push_back(make_draft("int8", kDir + "stories260K.bin", small_options(), 512));
  drafts.push_back(make_draft("ngram", "", small_options(), 512));
  for (auto& d : drafts) {
    for (SpeculativeOptions so : {SpeculativeOptions{1}, SpeculativeOptions{4}, SpeculativeOptions{3, true}}) {
      for (const auto& prompt : kPrompts) {
        SCOPED_TRACE(::testing::Message() << "draft " << d->name() << " K " << so.k << (so.adaptive ? " adaptive" : "")
                                          << " prompt length " << prompt.size());
        SpeculativeStats st;
        EXPECT_EQ(speculative(*d, so, prompt, opt, &st), plain(prompt, opt));
        EXPECT_GT(st.verify_steps, 0);
        if (d->name() != "ngram") EXPECT_GT(st.acceptance_rate(), 0.5) << "a copy of the target should agree";
      }
    }
  }
}

// The int8 self-draft of a MoE target requantises every expert (and packs it for the
// VNNI kernel where there is one) but keeps the router; greedy output equals plain
// decoding and the copy agrees with its target most of the time. The target is the
// llama.cpp-golden MoE GGUF (8 experts, top-2) of tests/moe.
TEST(Speculative, Int8DraftOfAMoeTargetRequantisesItsExperts) {
  const std::string path = std::string(TESSERA_TEST_DATA) + "/gguf_tiny_moe/model_f32.gguf";
  kernels::ThreadPool pool(1);
  LoadOptions lo;
  lo.int8_copy = true;
  const auto copy = load_model(path, pool, {}, {}, lo);
  const auto& layers = dynamic_cast<const LlamaModel&>(*copy->model).weights().layers;
  ASSERT_FALSE(layers.empty());
  int64_t experts = 0;
  for (const LlamaLayerWeights& l : layers) {
    EXPECT_EQ(l.moe.router.dtype, DType::kF32) << "the router is kept";
    for (const MoeExpertWeights& e : l.moe.experts) {
      for (const kernels::WeightMatrix* m : {&e.gate, &e.up, &e.down}) {
        EXPECT_EQ(m->dtype, DType::kQ8_0);
        EXPECT_EQ(m->layout == kernels::WeightLayout::kQ8Rows16, kernels::q8_rows16_available());
      }
      ++experts;
    }
  }
  EXPECT_EQ(experts, static_cast<int64_t>(layers.size()) * 8);

  WorkerOptions wo = small_options();
  Worker moe_target(path, wo);
  auto draft = make_draft("int8", path, wo, moe_target.config().vocab_size);
  GenerateOptions opt;
  opt.max_new_tokens = 40;
  const std::vector<int32_t> prompt = {1, 5, 9, 17, 33};
  const std::vector<int32_t> want = plain(prompt, opt, moe_target);
  SpeculativeStats st;
  EXPECT_EQ(speculative(*draft, {4}, prompt, opt, &st, moe_target), want);
  EXPECT_GT(st.acceptance_rate(), 0.5) << "an int8 copy of the target should agree";
}

TEST(Speculative, StopTokensAndMaxTokensAsPlain) {
  GenerateOptions opt;
  opt.max_new_tokens = 37;
  opt.stop_tokens = {13};  // a frequent token
  auto d = make_draft("int8", kDir + "stories260K.bin", small_options(), 512);
  for (const auto& prompt : kPrompts) EXPECT_EQ(speculative(*d, {5}, prompt, opt), plain(prompt, opt));
}

// A legitimate draft whose q differs from p: the target's int8 copy sampling at twice
// the temperature (q is what it really sampled from).
class HotDraft final : public Draft {
 public:
  HotDraft() : inner_(make_draft("int8", kDir + "stories260K.bin", small_options(), 512)) {}
  void propose(std::span<const int32_t> ctx, int32_t k, const SamplingParams& s, uint64_t& rng,
               std::vector<int32_t>& tokens, std::vector<float>& probs) override {
    SamplingParams hot = s;
    hot.temperature *= 2.0f;
    inner_->propose(ctx, k, hot, rng, tokens, probs);
  }
  void reset() override { inner_->reset(); }
  std::string name() const override { return "hot"; }

 private:
  std::unique_ptr<Draft> inner_;
};

using Histograms = std::map<int, std::map<int32_t, int64_t>>;  // position -> token -> count

const std::vector<int> kPositions = {1, 2, 7};  // position 0 comes from the prefill step

template <typename Run>
Histograms histograms(int n_seeds, Run run) {
  Histograms h;
  for (int seed = 1; seed <= n_seeds; ++seed) {
    const std::vector<int32_t> out = run(static_cast<uint64_t>(seed) * 7919);
    for (int pos : kPositions)
      if (pos < static_cast<int>(out.size())) ++h[pos][out[pos]];
  }
  return h;
}

TEST(Speculative, SampledTokensFollowTheTargetAndABrokenRuleIsCaught) {
  constexpr int kSeeds = 1500;
  const std::vector<int32_t> prompt = {1, 403, 407};
  GenerateOptions opt;
  opt.max_new_tokens = 8;
  opt.sampling.temperature = 1.0f;
  const Histograms ref = histograms(kSeeds, [&](uint64_t seed) {
    opt.seed = seed;
    return plain(prompt, opt);
  });
  HotDraft hot;
  NgramDraft ngram(2, 1);
  for (Draft* d : std::vector<Draft*>{&hot, &ngram}) {
    for (bool broken : {false, true}) {
      if (broken && d == &ngram) continue;  // n-gram proposals are too rare early on to expose it
      SpeculativeStats total;
      const Histograms got = histograms(kSeeds, [&](uint64_t seed) {
        opt.seed = seed;
        SpeculativeStats st;
        auto out = speculative(*d, {3}, prompt, opt, &st, broken ? broken_target() : target());
        total.drafted += st.drafted;
        total.accepted += st.accepted;
        return out;
      });
      bool any_rejects = false;
      for (int pos : kPositions) {
        const testing::ChiSquare c = testing::chi_square_two_sample(ref.at(pos), got.at(pos));
        SCOPED_TRACE(::testing::Message() << d->name() << (broken ? " broken" : " exact") << " position " << pos
                                          << ": chi2 " << c.statistic << " df " << c.df << " acceptance "
                                          << static_cast<double>(total.accepted) / std::max<int64_t>(1, total.drafted));
        if (!broken) EXPECT_FALSE(c.rejects());
        any_rejects = any_rejects || c.rejects();
      }
      if (broken) EXPECT_TRUE(any_rejects) << d->name() << ": the broken rule went unnoticed";
      EXPECT_GT(total.drafted, 0);
    }
  }
}

// Rollback: a verify step whose draft is right twice then wrong; the next step's
// logits (which read the cache of every accepted position) equal plain decoding's.
TEST(Speculative, KvOfAcceptedPositionsEqualsPlainDecoding) {
  const std::vector<int32_t> prompt = {1, 403, 407, 261};
  GenerateOptions opt;
  opt.max_new_tokens = 6;
  const std::vector<int32_t> g = plain(prompt, opt);  // greedy continuation
  const int64_t L = static_cast<int64_t>(prompt.size());
  Worker& w = target();
  KvBlockAllocator alloc(w.kv_shape().n_blocks);
  const int64_t bs = w.kv_shape().block_size;

  // Plain decoding of prompt + g[0..3], logits of the step that feeds g[3].
  SequenceStep a;
  a.seq_id = 100;
  a.tokens = prompt;
  ASSERT_TRUE(alloc.ensure(a.block_table, L, bs));
  w.run_step({1, {a}, {}});
  for (int i = 0; i < 3; ++i) {
    a.tokens = {g[i]};
    a.pos0 = L + i;
    ASSERT_TRUE(alloc.ensure(a.block_table, a.pos0 + 1, bs));
    w.run_step({2, {a}, {}});
  }
  a.tokens = {g[3]};
  a.pos0 = L + 3;
  a.return_logits = true;
  ASSERT_TRUE(alloc.ensure(a.block_table, a.pos0 + 1, bs));
  const StepResult plain_step = w.run_step({3, {a}, {}});

  // Speculative: prefill, then verify [g0, g1, g2, wrong, wrong2] -> 2 accepted, extra g3.
  SequenceStep b;
  b.seq_id = 200;
  b.tokens = prompt;
  ASSERT_TRUE(alloc.ensure(b.block_table, L, bs));
  EXPECT_EQ(w.run_step({4, {b}, {}}).outputs[0].samples[0].token, g[0]);
  const int32_t wrong = (g[3] + 1) % 512, wrong2 = (g[3] + 2) % 512;
  b.tokens = {g[0], g[1], g[2], wrong, wrong2};
  b.draft_tokens = {g[1], g[2], wrong, wrong2};
  b.pos0 = L;
  b.n_outputs = 5;
  ASSERT_TRUE(alloc.ensure(b.block_table, L + 5, bs));
  const StepResult v = w.run_step({5, {b}, {}});
  ASSERT_EQ(v.outputs[0].accepted, 2);
  EXPECT_EQ(v.outputs[0].extra_token, g[3]);
  // The rejected positions L + 3, L + 4 hold K/V of wrong tokens; the next step
  // overwrites L + 3 and must not see L + 4.
  b.tokens = {g[3]};
  b.draft_tokens.clear();
  b.pos0 = L + 3;
  b.n_outputs = 1;
  b.return_logits = true;
  const StepResult after = w.run_step({6, {b}, {}});
  ASSERT_EQ(after.outputs[0].logits.size(), plain_step.outputs[0].logits.size());
  for (size_t i = 0; i < after.outputs[0].logits.size(); ++i)
    ASSERT_NEAR(after.outputs[0].logits[i], plain_step.outputs[0].logits[i], 1e-4f) << "logit " << i;
  EXPECT_EQ(after.outputs[0].samples[0].token, g[4]);
  alloc.release(a.block_table);
  alloc.release(b.block_table);
}

TEST(Speculative, VerifyStepsReportTheSampledTokensLogprob) {
  // n_logprobs = 0 / 3 on a verify step: each emitted token's logprob (and its top 3
  // alternatives) equal plain decoding's (the HTTP API's "logprobs" and the Cap'n Proto
  // API decode speculatively with them).
  for (const int32_t n_top : {0, 3}) {
    SCOPED_TRACE("n_logprobs " + std::to_string(n_top));
    const std::vector<int32_t> prompt = {1, 403, 407, 261};
    const int64_t L = static_cast<int64_t>(prompt.size());
    Worker& w = target();
    KvBlockAllocator alloc(w.kv_shape().n_blocks);
    const int64_t bs = w.kv_shape().block_size;
    SequenceStep a;
    a.seq_id = 300;
    a.tokens = prompt;
    a.sampling.n_logprobs = n_top;
    ASSERT_TRUE(alloc.ensure(a.block_table, L + 8, bs));
    std::vector<SampleResult> plain_samples = {w.run_step({1, {a}, {}}).outputs[0].samples[0]};
    for (int i = 0; i < 6; ++i) {
      a.tokens = {plain_samples.back().token};
      a.pos0 = L + i;
      plain_samples.push_back(w.run_step({2, {a}, {}}).outputs[0].samples[0]);
    }
    for (const auto& x : plain_samples) {
      EXPECT_LT(x.logprob, 0.0f);
      ASSERT_EQ(x.top.size(), static_cast<size_t>(n_top));
    }
    // Verify [g0 | g1 g2 g3 wrong]: 3 accepted, then the correction g4.
    SequenceStep b = a;
    b.seq_id = 400;
    b.block_table.clear();
    b.tokens = prompt;
    b.pos0 = 0;
    ASSERT_TRUE(alloc.ensure(b.block_table, L + 8, bs));
    w.run_step({3, {b}, {}});
    const int32_t wrong = (plain_samples[4].token + 1) % 512;
    b.tokens = {plain_samples[0].token, plain_samples[1].token, plain_samples[2].token, plain_samples[3].token, wrong};
    b.draft_tokens = {plain_samples[1].token, plain_samples[2].token, plain_samples[3].token, wrong};
    b.pos0 = L;
    b.n_outputs = 5;
    const SequenceOutput v = w.run_step({4, {b}, {}}).outputs[0];
    ASSERT_EQ(v.accepted, 3);
    ASSERT_EQ(v.samples.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      const SampleResult& got = v.samples[i];
      const SampleResult& want = plain_samples[i + 1];
      EXPECT_EQ(got.token, want.token) << i;
      EXPECT_NEAR(got.logprob, want.logprob, 1e-5) << i;
      ASSERT_EQ(got.top.size(), want.top.size()) << i;
      for (size_t j = 0; j < want.top.size(); ++j) {
        EXPECT_EQ(got.top[j].token, want.top[j].token) << i << " alternative " << j;
        EXPECT_NEAR(got.top[j].logprob, want.top[j].logprob, 1e-5) << i << " alternative " << j;
      }
    }
    alloc.release(a.block_table);
    alloc.release(b.block_table);
  }
}

}  // namespace
}  // namespace tessera
