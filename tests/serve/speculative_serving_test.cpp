// Speculative decoding in the serving scheduler: verify slices of K + 1 tokens, a
// length change on rejection (the rejected positions' K/V is overwritten by the next
// step), tokens identical to plain decoding whatever the draft proposes, and counts
// that add up.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <random>

#include "coordinator/draft_proposer.h"
#include "coordinator/scheduler.h"
#include "tests/serve/fake_worker.h"
#include "tests/serve/outcomes.h"

namespace tessera {
namespace {

using testing::FakeWorker;
using testing::Outcome;

// Proposes what the fake worker will produce for the first `good` tokens (random per
// call), then garbage: exercises full acceptance, partial and immediate rejection.
class OracleDraft final : public DraftProposer {
 public:
  explicit OracleDraft(const FakeWorker& worker, int32_t vocab) : worker_(worker), vocab_(vocab) {}
  void propose(std::span<DraftRequest> requests) override {
    for (DraftRequest& r : requests) {
      std::vector<int32_t> ctx(r.ctx.begin(), r.ctx.end());
      const int32_t good = static_cast<int32_t>(rng_() % static_cast<uint32_t>(r.k + 2));
      for (int32_t j = 0; j < r.k; ++j) {
        int32_t t = worker_.next_token(ctx);
        if (j >= good) t = (t + 1 + static_cast<int32_t>(rng_() % 5)) % vocab_;
        r.tokens.push_back(t);
        ctx.push_back(t);
      }
      ++calls;
    }
  }
  void release(uint64_t id) override { released.push_back(id); }
  std::string name() const override { return "oracle"; }
  int64_t calls = 0;
  std::vector<uint64_t> released;

 private:
  const FakeWorker& worker_;
  int32_t vocab_;
  std::mt19937 rng_{11};
};

std::map<uint64_t, Outcome> run(const std::vector<SequenceRequest>& reqs, int32_t k, int64_t blocks,
                                int64_t* verify_slices = nullptr) {
  SchedulerConfig c;
  c.max_batch_tokens = 48;
  c.max_running = 8;
  c.speculative_k = k;
  Scheduler sched(c, blocks, 4);
  FakeWorker w(blocks, 4, 97);
  OracleDraft draft(w, 97);
  for (const auto& r : reqs) EXPECT_TRUE(sched.add(r));
  std::map<uint64_t, Outcome> out;
  auto take = [&](const std::vector<SequenceEvent>& events) { testing::record_events(out, events); };
  for (int i = 0; i < 20000 && (sched.running() > 0 || sched.waiting() > 0); ++i) {
    Scheduler::Iteration it = sched.schedule(nullptr, k > 0 ? &draft : nullptr);
    take(it.finished);
    if (it.plan.sequences.empty()) continue;
    for (const auto& s : it.plan.sequences) {
      if (s.draft_tokens.empty()) continue;
      EXPECT_EQ(s.n_outputs, static_cast<int32_t>(s.draft_tokens.size()) + 1);
      EXPECT_LE(static_cast<int32_t>(s.draft_tokens.size()), k);
      if (verify_slices) ++*verify_slices;
    }
    std::set<uint64_t> gone;  // finished before this step: schedule() released them
    for (const auto& [id, o] : out)
      if (o.finish != FinishReason::kNone) gone.insert(id);
    take(sched.apply(it.plan, w.run_step(it.plan)));
    // Blocks reserved for rejected positions go back: the pool holds at most what the
    // requests still holding blocks need for their tokens (shared prefix blocks count
    // once, so <=).
    int64_t need = 0;
    for (const auto& r : reqs) {
      if (gone.count(r.id)) continue;
      const auto o = out.find(r.id);
      const int64_t len = static_cast<int64_t>(r.prompt.size()) + (o == out.end() ? 0 : static_cast<int64_t>(o->second.tokens.size()));
      need += (len + 3) / 4;
    }
    EXPECT_LE(sched.blocks().used(), need) << "step " << it.plan.step_id;
  }
  sched.schedule(nullptr, k > 0 ? &draft : nullptr);  // drains the last finished sequences
  EXPECT_EQ(sched.running() + sched.waiting(), 0);
  EXPECT_EQ(sched.blocks().used(), 0);
  if (k > 0) {
    EXPECT_EQ(draft.released.size(), reqs.size());  // every sequence's draft state dropped
  }
  return out;
}

std::vector<SequenceRequest> requests() {
  std::vector<SequenceRequest> reqs;
  for (int i = 0; i < 12; ++i) {
    SequenceRequest r;
    r.id = 1 + static_cast<uint64_t>(i);
    for (int j = 0; j < 3 + 5 * i; ++j) r.prompt.push_back((i * 13 + j * 3) % 97);
    r.max_tokens = 5 + 4 * i;
    reqs.push_back(std::move(r));
  }
  return reqs;
}

TEST(SpeculativeServing, TokensEqualPlainDecodingForEveryK) {
  const auto reqs = requests();
  const auto plain = run(reqs, 0, 256);
  for (int32_t k : {1, 3, 8}) {
    int64_t slices = 0;
    const auto spec = run(reqs, k, 256, &slices);
    EXPECT_GT(slices, 0) << "K " << k << ": no verify step ran";
    for (const auto& r : reqs) {
      const Outcome& o = spec.at(r.id);
      EXPECT_EQ(o.tokens, plain.at(r.id).tokens) << "K " << k << ", request " << r.id;
      EXPECT_EQ(o.finish, FinishReason::kLength);
      EXPECT_EQ(static_cast<int64_t>(o.tokens.size()), r.max_tokens) << "max_tokens overshot or undershot";
      // Each verify pass emits accepted + 1 tokens; the first token comes from the prefill.
      EXPECT_LE(o.spec.accepted, o.spec.drafted);
      EXPECT_LE(o.spec.verify_steps + o.spec.accepted, static_cast<int64_t>(o.tokens.size()));
    }
  }
}

TEST(SpeculativeServing, StaysExactWhenBlocksRunOutAndSequencesArePreempted) {
  const auto reqs = requests();
  const auto plain = run(reqs, 0, 256);
  const auto spec = run(reqs, 4, 40);  // 160 positions for 12 sequences of up to ~110
  for (const auto& r : reqs) EXPECT_EQ(spec.at(r.id).tokens, plain.at(r.id).tokens) << "request " << r.id;
}

TEST(SpeculativeServing, StopTokenInsideAnAcceptedRunEndsThere) {
  auto reqs = requests();
  const auto plain = run(reqs, 0, 256);
  for (auto& r : reqs) r.stop_tokens = {plain.at(r.id).tokens.at(r.max_tokens / 2)};
  const auto plain_stop = run(reqs, 0, 256);
  const auto spec_stop = run(reqs, 4, 256);
  for (const auto& r : reqs) {
    EXPECT_EQ(spec_stop.at(r.id).tokens, plain_stop.at(r.id).tokens) << "request " << r.id;
    EXPECT_EQ(spec_stop.at(r.id).finish, FinishReason::kStop) << "request " << r.id;
  }
}

}  // namespace
}  // namespace tessera
