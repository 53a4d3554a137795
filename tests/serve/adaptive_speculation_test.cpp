// Adaptive K and the batch cap of speculative decoding in the serving scheduler
// (coordinator/adaptive_k.h): the rule alone, the cap alone, and the scheduler driven
// by the fake worker (greedy verification) with drafts that are always right, always
// wrong or right for a random prefix. The K each sequence gets is read from the step
// plans the worker sees; the tokens must equal plain decoding's whatever happens.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <random>

#include "coordinator/adaptive_k.h"
#include "coordinator/draft_proposer.h"
#include "coordinator/scheduler.h"
#include "tests/serve/fake_worker.h"
#include "tests/serve/outcomes.h"

namespace tessera {
namespace {

using testing::FakeWorker;
using testing::Outcome;

constexpr int32_t kVocab = 97;

// ---- the rule ----

TEST(AdaptiveK, GrowsAfterAFullDraftShrinksAfterAPoorOneAndStaysInBounds) {
  AdaptiveK k(4);
  EXPECT_EQ(k.k(), 4);
  k.update(4, 4);  // all accepted
  EXPECT_EQ(k.k(), 5);
  k.update(5, 3);  // 3 of 5: at least half, no change
  EXPECT_EQ(k.k(), 5);
  k.update(5, 2);  // 2 of 5: fewer than half
  EXPECT_EQ(k.k(), 4);
  k.update(2, 2);  // a clipped draft fully accepted says nothing about K
  EXPECT_EQ(k.k(), 4);
  k.update(0, 0);  // nothing proposed
  EXPECT_EQ(k.k(), 4);
  for (int i = 0; i < 10; ++i) k.update(k.k(), k.k());
  EXPECT_EQ(k.k(), AdaptiveK::kMax);
  for (int i = 0; i < 10; ++i) k.update(k.k(), 0);
  EXPECT_EQ(k.k(), AdaptiveK::kMin);
  AdaptiveK custom(3, 2, 5);
  for (int i = 0; i < 4; ++i) custom.update(custom.k(), 0);
  EXPECT_EQ(custom.k(), 2);
  for (int i = 0; i < 6; ++i) custom.update(custom.k(), custom.k());
  EXPECT_EQ(custom.k(), 5);
}

// ---- the batch cap ----

int64_t verify_tokens(const std::vector<int32_t>& k) {
  int64_t n = 0;
  for (int32_t v : k) n += v + 1;
  return n;
}

TEST(DraftBatchCap, ShrinksTheLargestFirstLastOnTiesDownToPlainDecoding) {
  std::vector<int32_t> k = {8, 2, 1};  // 14 tokens
  cap_draft_lengths(k, 0);             // no cap
  EXPECT_EQ(k, (std::vector<int32_t>{8, 2, 1}));
  cap_draft_lengths(k, 14);  // fits already
  EXPECT_EQ(k, (std::vector<int32_t>{8, 2, 1}));
  cap_draft_lengths(k, 9);
  EXPECT_EQ(k, (std::vector<int32_t>{3, 2, 1}));
  cap_draft_lengths(k, 6);  // 3 2 1 -> 2 2 1 -> 2 1 1 (last of the tied 2s) -> 1 1 1
  EXPECT_EQ(k, (std::vector<int32_t>{1, 1, 1}));
  std::vector<int32_t> tie = {4, 4, 4, 0};
  cap_draft_lengths(tie, 14);  // 16 tokens: the last 4, then the middle one
  EXPECT_EQ(tie, (std::vector<int32_t>{4, 3, 3, 0}));
  std::vector<int32_t> many = {3, 0, 5, 2};
  cap_draft_lengths(many, 2);  // fewer tokens than decoders: all plain, none dropped
  EXPECT_EQ(many, (std::vector<int32_t>{0, 0, 0, 0}));
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int32_t> v(1 + rng() % 12);
    for (int32_t& x : v) x = static_cast<int32_t>(rng() % 17);
    const std::vector<int32_t> before = v;
    const int64_t cap = 1 + static_cast<int64_t>(rng() % 80);
    cap_draft_lengths(v, cap);
    const int64_t floor = static_cast<int64_t>(v.size());
    EXPECT_EQ(verify_tokens(v), std::min(verify_tokens(before), std::max(cap, floor)));
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_LE(v[i], before[i]);
      EXPECT_GE(v[i], 0);
      // Largest first: a shrunk K is never below another K that was left above it.
      if (v[i] < before[i]) {
        for (size_t j = 0; j < v.size(); ++j) EXPECT_LE(v[j], v[i] + 1) << "trial " << trial;
      }
    }
  }
}

// ---- the scheduler ----

enum class DraftMode { kRight, kWrong, kRandom };

// Proposes the fake worker's own next tokens (kRight), tokens that never match
// (kWrong), or right ones for a random prefix (kRandom), by request id.
class ModalDraft final : public DraftProposer {
 public:
  ModalDraft(const FakeWorker& worker, std::function<DraftMode(uint64_t)> mode) : worker_(worker), mode_(std::move(mode)) {}
  void propose(std::span<DraftRequest> requests) override {
    for (DraftRequest& r : requests) {
      std::vector<int32_t> ctx(r.ctx.begin(), r.ctx.end());
      int32_t good = r.k;
      switch (mode_(r.seq_id)) {
        case DraftMode::kRight: break;
        case DraftMode::kWrong: good = 0; break;
        case DraftMode::kRandom: good = static_cast<int32_t>(rng_() % static_cast<uint32_t>(r.k + 2)); break;
      }
      for (int32_t j = 0; j < r.k; ++j) {
        int32_t t = worker_.next_token(ctx);
        if (j >= good) t = (t + 1 + static_cast<int32_t>(rng_() % 5)) % kVocab;
        r.tokens.push_back(t);
        ctx.push_back(t);
      }
    }
  }
  std::string name() const override { return "modal"; }

 private:
  const FakeWorker& worker_;
  std::function<DraftMode(uint64_t)> mode_;
  std::mt19937 rng_{23};
};

struct Slice {
  int32_t k = 0;      // draft tokens verified (0: plain decode)
  int64_t room = 0;   // max_tokens - generated - 1 when it was planned
};

struct Trace {
  std::map<uint64_t, Outcome> out;
  std::map<uint64_t, std::vector<Slice>> decodes;  // every decode slice, in order
  std::vector<int64_t> decode_tokens_per_step;     // sum of (K + 1) over decode slices
  std::vector<int64_t> verify_tokens_per_step;     // the same over slices with K > 0
  int64_t preemptions = 0;
};

// Runs every request to completion with up to c.pipeline_depth plans in flight (the
// fake worker runs a plan when its result is taken, in submission order, as a pipeline
// does); a sequence is in at most one plan in flight, so its outcome so far is current
// when a plan that holds it is built.
Trace drive(const std::vector<SequenceRequest>& reqs, SchedulerConfig c, int64_t blocks,
            const std::function<DraftMode(uint64_t)>& mode) {
  Scheduler sched(c, blocks, 4);
  FakeWorker w(blocks, 4, kVocab);
  ModalDraft draft(w, mode);
  std::map<uint64_t, const SequenceRequest*> by_id;
  for (const auto& r : reqs) {
    EXPECT_TRUE(sched.add(r));
    by_id[r.id] = &r;
  }
  Trace res;
  DraftProposer* d = c.speculative_k > 0 ? &draft : nullptr;
  const size_t depth = static_cast<size_t>(std::max(1, c.pipeline_depth));
  std::deque<StepPlan> flight;
  for (int i = 0; i < 20000 && (sched.running() > 0 || sched.waiting() > 0 || !flight.empty()); ++i) {
    while (flight.size() < depth) {
      Scheduler::Iteration it = sched.schedule(nullptr, d);
      testing::record_events(res.out, it.finished);
      if (it.plan.sequences.empty()) break;
      int64_t decode_tokens = 0, verify_tokens = 0;
      for (const auto& s : it.plan.sequences) {
        // A decode slice starts at the sequence's last token (prompt + generated so far).
        const SequenceRequest& r = *by_id.at(s.seq_id);
        const int64_t generated = static_cast<int64_t>(res.out[s.seq_id].tokens.size());
        if (generated == 0 || s.pos0 != static_cast<int64_t>(r.prompt.size()) + generated - 1) continue;
        EXPECT_EQ(s.tokens.size(), s.draft_tokens.size() + 1);
        decode_tokens += static_cast<int64_t>(s.tokens.size());
        if (!s.draft_tokens.empty()) verify_tokens += static_cast<int64_t>(s.tokens.size());
        res.decodes[s.seq_id].push_back({static_cast<int32_t>(s.draft_tokens.size()), r.max_tokens - generated - 1});
      }
      res.decode_tokens_per_step.push_back(decode_tokens);
      res.verify_tokens_per_step.push_back(verify_tokens);
      flight.push_back(std::move(it.plan));
    }
    if (flight.empty()) continue;
    StepPlan plan = std::move(flight.front());
    flight.pop_front();
    testing::record_events(res.out, sched.apply(plan, w.run_step(plan)));
  }
  sched.schedule(nullptr, d);
  EXPECT_EQ(sched.running() + sched.waiting(), 0);
  EXPECT_EQ(sched.blocks().used(), 0);
  res.preemptions = sched.preemptions();
  return res;
}

// A token budget no decode step reaches (8 x (8 + 1)), so only the rule and the cap set
// K; no prefix cache, so a re-admitted sequence never starts a slice at its last token
// and every slice that does is a decode.
SchedulerConfig config(int32_t k, bool adaptive, int64_t cap = 0) {
  SchedulerConfig c;
  c.max_batch_tokens = 128;
  c.prefix_caching = false;
  c.max_running = 8;
  c.speculative_k = k;
  c.speculative_adaptive = adaptive;
  c.speculative_max_batch_tokens = cap;
  return c;
}

std::vector<SequenceRequest> requests(int n, int64_t max_tokens_base, int64_t max_tokens_step) {
  std::vector<SequenceRequest> reqs;
  for (int i = 0; i < n; ++i) {
    SequenceRequest r;
    r.id = 1 + static_cast<uint64_t>(i);
    for (int j = 0; j < 3 + 5 * i; ++j) r.prompt.push_back((i * 13 + j * 3) % kVocab);
    r.max_tokens = max_tokens_base + max_tokens_step * i;
    reqs.push_back(std::move(r));
  }
  return reqs;
}

DraftMode odd_right_even_wrong(uint64_t id) { return id % 2 == 1 ? DraftMode::kRight : DraftMode::kWrong; }

void expect_plain_tokens(const Trace& spec, const Trace& plain, const std::vector<SequenceRequest>& reqs,
                         const std::string& what) {
  for (const auto& r : reqs) {
    EXPECT_EQ(spec.out.at(r.id).tokens, plain.out.at(r.id).tokens) << what << ", request " << r.id;
    EXPECT_EQ(static_cast<int64_t>(spec.out.at(r.id).tokens.size()), r.max_tokens) << what << ", request " << r.id;
  }
}

TEST(AdaptiveSpeculation, RightDraftsClimbToEightWrongOnesFallToOne) {
  const auto reqs = requests(4, 90, 3);
  const Trace plain = drive(reqs, config(0, false), 256, odd_right_even_wrong);
  const Trace spec = drive(reqs, config(4, true), 256, odd_right_even_wrong);
  expect_plain_tokens(spec, plain, reqs, "adaptive");
  for (const auto& r : reqs) {
    const std::vector<Slice>& d = spec.decodes.at(r.id);
    ASSERT_GE(d.size(), 8u) << "request " << r.id;
    // The K of every decode slice follows the rule exactly: the expected K, clipped by
    // what can still be emitted.
    int32_t expect_k = 4;
    for (size_t j = 0; j < d.size(); ++j) {
      const int32_t want = static_cast<int32_t>(std::min<int64_t>(expect_k, d[j].room));
      ASSERT_EQ(d[j].k, want) << "request " << r.id << ", decode " << j;
      if (r.id % 2 == 1 && d[j].k == expect_k) expect_k = std::min(expect_k + 1, 8);
      if (r.id % 2 == 0 && d[j].k > 0) expect_k = std::max(expect_k - 1, 1);
    }
    const int32_t peak = std::max_element(d.begin(), d.end(), [](const Slice& a, const Slice& b) { return a.k < b.k; })->k;
    if (r.id % 2 == 1) {
      EXPECT_EQ(peak, 8) << "request " << r.id;
      EXPECT_EQ(d[4].k, 8) << "request " << r.id << ": 4 5 6 7 8";
      EXPECT_EQ(spec.out.at(r.id).spec.final_k, 8);
    } else {
      EXPECT_EQ(d[3].k, 1) << "request " << r.id << ": 4 3 2 1";
      for (size_t j = 3; j < d.size(); ++j) EXPECT_EQ(d[j].k, d[j].room > 0 ? 1 : 0) << "decode " << j;
      EXPECT_EQ(spec.out.at(r.id).spec.final_k, 1);
      EXPECT_EQ(spec.out.at(r.id).spec.accepted, 0);
    }
  }
  // A fixed K (no adaptation) stays at 4 where there is room, and reports no final K.
  const Trace fixed = drive(reqs, config(4, false), 256, odd_right_even_wrong);
  expect_plain_tokens(fixed, plain, reqs, "fixed");
  for (const auto& r : reqs) {
    for (const Slice& s : fixed.decodes.at(r.id)) EXPECT_EQ(s.k, std::min<int64_t>(4, s.room));
    EXPECT_EQ(fixed.out.at(r.id).spec.final_k, 0);
  }
}

// --draft-k-max: the adaptive K of a request whose drafts are always right climbs to
// the configured maximum (12 here), never past it; tokens still equal plain decoding.
TEST(AdaptiveSpeculation, ClimbsToTheConfiguredMaximum) {
  const auto reqs = requests(2, 120, 3);
  const Trace plain = drive(reqs, config(0, false), 256, odd_right_even_wrong);
  SchedulerConfig c = config(4, true);
  c.speculative_k_max = 12;
  const Trace spec = drive(reqs, c, 256, odd_right_even_wrong);
  expect_plain_tokens(spec, plain, reqs, "adaptive to 12");
  for (const auto& r : reqs) {
    if (r.id % 2 == 0) continue;
    const std::vector<Slice>& d = spec.decodes.at(r.id);
    int32_t peak = 0;
    for (const Slice& x : d) peak = std::max(peak, x.k);
    EXPECT_EQ(peak, 12) << "request " << r.id;
    EXPECT_EQ(spec.out.at(r.id).spec.final_k, 12);
  }
}

TEST(AdaptiveSpeculation, ExactAndKeepsItsKUnderPreemption) {
  const auto reqs = requests(12, 5, 4);
  const Trace plain = drive(reqs, config(0, false), 256, [](uint64_t) { return DraftMode::kRandom; });
  SchedulerConfig cached = config(4, true);
  cached.prefix_caching = true;
  cached.max_batch_tokens = 48;
  const Trace random = drive(reqs, cached, 40, [](uint64_t) { return DraftMode::kRandom; });
  EXPECT_GT(random.preemptions, 0) << "the pool was meant to force preemption";
  expect_plain_tokens(random, plain, reqs, "random drafts, preempted");
  // Always-right drafts: K only grows, and survives preemption (it never drops back to
  // the start value while there is room).
  const Trace right = drive(reqs, config(4, true), 40, [](uint64_t) { return DraftMode::kRight; });
  EXPECT_GT(right.preemptions, 0) << "the pool was meant to force preemption";
  expect_plain_tokens(right, plain, reqs, "right drafts, preempted");
  int64_t verify = 0;
  for (const auto& r : reqs) {
    int32_t expect_k = 4;
    for (const Slice& s : right.decodes.at(r.id)) {
      ASSERT_EQ(s.k, std::min<int64_t>(expect_k, s.room)) << "request " << r.id;
      if (s.k == expect_k) expect_k = std::min(expect_k + 1, 8);
      verify += s.k > 0;
    }
  }
  EXPECT_GT(verify, 0);
}

TEST(AdaptiveSpeculation, BatchCapBoundsEveryStepsVerifyTokens) {
  const auto reqs = requests(12, 20, 4);
  const Trace plain = drive(reqs, config(0, false), 256, [](uint64_t) { return DraftMode::kRandom; });
  constexpr int64_t kCap = 12;  // 8 running sequences: at most 4 draft tokens between them
  for (bool adaptive : {false, true}) {
    for (DraftMode mode : {DraftMode::kRandom, DraftMode::kRight}) {
      const std::string what = std::string(adaptive ? "adaptive" : "fixed") + (mode == DraftMode::kRight ? ", right" : ", random");
      const Trace capped = drive(reqs, config(4, adaptive, kCap), 256, [mode](uint64_t) { return mode; });
      expect_plain_tokens(capped, plain, reqs, what);
      int64_t at_cap = 0, drafted = 0;
      for (int64_t n : capped.decode_tokens_per_step) {
        EXPECT_LE(n, kCap) << what;
        at_cap += n == kCap;
      }
      for (const auto& [id, d] : capped.decodes)
        for (const Slice& s : d) drafted += s.k;
      EXPECT_GT(at_cap, 0) << what << ": the cap never bound";
      EXPECT_GT(drafted, 0) << what << ": nothing was verified";
      // Without the cap the same run goes over it.
      const Trace free = drive(reqs, config(4, adaptive, 0), 256, [mode](uint64_t) { return mode; });
      EXPECT_GT(*std::max_element(free.decode_tokens_per_step.begin(), free.decode_tokens_per_step.end()), kCap);
    }
  }
}

// Pipeline parallelism keeps several plans in flight (the serving loop's depth = PP
// stages): adaptive K and the cap stay exact there too, also under preemption.
TEST(AdaptiveSpeculation, ExactWithPlansInFlight) {
  const auto reqs = requests(12, 20, 4);
  const Trace plain = drive(reqs, config(0, false), 256, [](uint64_t) { return DraftMode::kRandom; });
  for (int32_t depth : {2, 4}) {
    for (int64_t blocks : {256, 48}) {
      SchedulerConfig c = config(4, true, 12);
      c.pipeline_depth = depth;
      const Trace t = drive(reqs, c, blocks, [](uint64_t id) { return id % 3 == 0 ? DraftMode::kWrong : DraftMode::kRandom; });
      const std::string what = "depth " + std::to_string(depth) + ", " + std::to_string(blocks) + " blocks";
      expect_plain_tokens(t, plain, reqs, what);
      if (blocks == 48) EXPECT_GT(t.preemptions, 0) << what;
      int64_t drafted = 0;
      for (const auto& [id, d] : t.decodes)
        for (const Slice& s : d) drafted += s.k;
      EXPECT_GT(drafted, 0) << what;
      // The verify slices of every plan respect the cap. (Not all its decodes: with
      // several plans in flight, the decoders beyond a plan's share, running / depth,
      // are taken as plain 1-token chunks by the prefill pass, outside the cap.)
      for (int64_t n : t.verify_tokens_per_step) EXPECT_LE(n, 12) << what;
    }
  }
}

}  // namespace
}  // namespace tessera
