// The serving scheduler with a fixed-state model: state slots as the sequence's cache.
// Several requests interleave (chunked prefill, decodes in one batch) and are
// preempted when the (small) block pool runs out; each must still produce exactly what
// it produces alone, and slots must come back.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "coordinator/batch_generator.h"
#include "coordinator/draft_proposer.h"
#include "coordinator/generator.h"
#include "coordinator/scheduler.h"
#include "coordinator/speculative_generator.h"
#include "coordinator/step_runner.h"
#include "worker/worker.h"

namespace tessera {
namespace {

const std::string kDir = std::string(TESSERA_TEST_DATA) + "/hf_tiny_recurrent_gemma";

std::vector<int32_t> alone(Worker& w, const std::vector<int32_t>& prompt, int64_t n) {
  Generator gen(w);
  GenerateOptions opt;
  opt.max_new_tokens = n;
  std::vector<int32_t> out;
  gen.generate(prompt, opt, [&](int32_t t) {
    out.push_back(t);
    return true;
  });
  return out;
}

std::vector<std::vector<int32_t>> prompts() {
  std::vector<std::vector<int32_t>> p;
  for (int r = 0; r < 5; ++r) {
    std::vector<int32_t> ids = {2};
    for (int i = 0; i < 9 + 7 * r; ++i) ids.push_back(3 + (r * 131 + i * 37) % 317);
    p.push_back(ids);
  }
  return p;
}

struct Served {
  std::map<uint64_t, std::vector<int32_t>> tokens;
  std::map<uint64_t, SpeculativeCounts> speculative;
  int64_t preemptions = 0;
  int64_t max_slot = -1;
  int64_t state_copies = 0;
  int64_t steps = 0;
  int64_t folded = 0;  // verify slices that re-feed a rolled-back run before their drafts
};

Served serve(Worker& w, SchedulerConfig sc, int64_t kv_blocks, int64_t n_new, DraftProposer* drafts = nullptr,
             const std::vector<std::vector<int32_t>>& ps = prompts()) {
  LocalStepRunner runner(w);
  sc.state_slots = runner.state_slots();
  Scheduler sched(sc, kv_blocks, runner.kv_block_size());
  for (size_t i = 0; i < ps.size(); ++i) {
    SequenceRequest r;
    r.id = i + 1;
    r.prompt = ps[i];
    r.max_tokens = n_new;
    EXPECT_TRUE(sched.add(r));
  }
  Served out;
  size_t finished = 0;
  for (int iter = 0; iter < 10000 && finished < ps.size(); ++iter) {
    Scheduler::Iteration it = sched.schedule(nullptr, drafts);
    finished += it.finished.size();
    if (it.plan.sequences.empty()) continue;
    std::set<int32_t> used;  // no two sequences of a step share a slot (state or saved)
    ++out.steps;
    for (const SequenceStep& s : it.plan.sequences) {
      if (!s.draft_tokens.empty() && s.tokens.size() - s.draft_tokens.size() > 1) ++out.folded;
      EXPECT_GE(s.state_slot, 0);
      EXPECT_TRUE(used.insert(s.state_slot).second) << "slot " << s.state_slot << " twice in step " << it.plan.step_id;
      out.max_slot = std::max<int64_t>(out.max_slot, s.state_slot);
    }
    for (const StateCopy& c : it.plan.state_copies) {
      EXPECT_NE(c.src, c.dst);
      EXPECT_TRUE(used.count(c.src) + used.count(c.dst) == 1) << "a copy between the step's slot and its saved one";
      out.max_slot = std::max<int64_t>(out.max_slot, std::max(c.src, c.dst));
    }
    out.state_copies += static_cast<int64_t>(it.plan.state_copies.size());
    const StepResult r = runner.run_step(it.plan);
    for (const SequenceEvent& e : sched.apply(it.plan, r)) {
      if (e.token) out.tokens[e.id].push_back(e.token->token);
      out.speculative[e.id] = e.speculative;
      if (e.finish != FinishReason::kNone) ++finished;
    }
  }
  out.preemptions = sched.preemptions();
  EXPECT_EQ(finished, ps.size());
  return out;
}

TEST(RecurrentGemmaServing, InterleavedAndPreemptedRequestsEqualAloneRuns) {
  Worker w(kDir, WorkerOptions{});
  const auto ps = prompts();
  SchedulerConfig sc;
  sc.max_batch_tokens = 12;  // prompts arrive in chunks, decodes share steps
  sc.max_running = 64;       // capped to the worker's 8 slots
  const Served plain = serve(w, sc, 1 << 16, 20);
  // 9 blocks of 16 positions cannot hold five sequences of up to 57 positions at once:
  // the scheduler preempts (recompute from position 0, slot returned and retaken).
  const Served tight = serve(w, sc, 9, 20);
  EXPECT_GT(tight.preemptions, 0);
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::vector<int32_t> want = alone(w, ps[i], 20);
    EXPECT_EQ(plain.tokens.at(i + 1), want) << "request " << i + 1;
    EXPECT_EQ(tight.tokens.at(i + 1), want) << "request " << i + 1 << " (with preemption)";
  }
  EXPECT_LT(plain.max_slot, w.state_slots());
}

TEST(RecurrentGemmaServing, SchedulerCapsRunningToSlotsAndDisablesPrefixCache) {
  SchedulerConfig sc;
  sc.max_running = 64;
  sc.state_slots = 3;
  Scheduler s(sc, 1000, 16);
  EXPECT_EQ(s.config().max_running, 3);
  EXPECT_FALSE(s.config().prefix_caching);
  for (uint64_t id = 1; id <= 5; ++id) {
    SequenceRequest r;
    r.id = id;
    r.prompt = {2, 3, 4};
    r.max_tokens = 4;
    ASSERT_TRUE(s.add(r));
  }
  Scheduler::Iteration it = s.schedule();
  ASSERT_EQ(it.plan.sequences.size(), 3u);
  std::vector<int32_t> slots;
  for (const SequenceStep& st : it.plan.sequences) slots.push_back(st.state_slot);
  std::sort(slots.begin(), slots.end());
  EXPECT_EQ(slots, (std::vector<int32_t>{0, 1, 2}));
  // Finish one: its slot goes to the next admitted request.
  s.finish(it.plan.sequences[1].seq_id, FinishReason::kCancelled);
  const int32_t freed = it.plan.sequences[1].state_slot;
  StepResult r;
  for (const SequenceStep& st : it.plan.sequences) {
    SequenceOutput o;
    o.seq_id = st.seq_id;
    o.samples.push_back({7, 0, {}});
    o.rng_state = st.rng_state;
    r.outputs.push_back(o);
  }
  s.apply(it.plan, r);
  it = s.schedule();
  bool reused = false;
  for (const SequenceStep& st : it.plan.sequences)
    if (st.pos0 == 0) reused = reused || st.state_slot == freed;
  EXPECT_TRUE(reused);
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

// Offline batches (generate_batch, tessera bench --sequences): one slot per sequence.
TEST(RecurrentGemmaServing, BatchGeneratorEqualsAloneRuns) {
  Worker w(kDir, WorkerOptions{});
  LocalStepRunner runner(w);
  KvBlockAllocator allocator(runner.kv_blocks());
  const auto ps = prompts();
  BatchOptions bo;
  bo.max_new_tokens = 12;
  bo.micro_batches = 2;
  const auto out = generate_batch(runner, allocator, ps, bo, nullptr);
  ASSERT_EQ(out.size(), ps.size());
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_EQ(out[i], alone(w, ps[i], 12)) << "sequence " << i;
  std::vector<std::vector<int32_t>> too_many(9, ps[0]);
  EXPECT_THROW(generate_batch(runner, allocator, too_many, bo, nullptr), Error);
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

// Speculative decoding of a fixed-state target: every rejected draft is rolled back by
// restoring the state saved before the verify step (StepPlan::state_copies) and
// replaying the accepted tokens. Greedy output must equal plain greedy exactly; the
// n-gram draft is wrong often on this random model, so rollbacks happen.
TEST(RecurrentGemmaServing, SpeculativeGreedyEqualsPlainGreedy) {
  Worker w(kDir, WorkerOptions{});
  LocalStepRunner runner(w);
  for (const auto& prompt : prompts()) {
    std::vector<int32_t> p = prompt;
    for (int i = 0; i < 3; ++i) p.insert(p.end(), prompt.begin() + 1, prompt.end());  // repeats: n-gram hits
    const std::vector<int32_t> want = alone(w, p, 40);
    NgramDraft draft(3, 1);
    SpeculativeOptions so;
    so.k = 4;
    SpeculativeGenerator gen(runner, draft, so);
    GenerateOptions opt;
    opt.max_new_tokens = 40;
    std::vector<int32_t> got;
    gen.generate(p, opt, [&](int32_t t) {
      got.push_back(t);
      return true;
    });
    EXPECT_EQ(got, want);
    EXPECT_GT(gen.stats().drafted, 0);
    EXPECT_LT(gen.stats().accepted, gen.stats().drafted) << "no rejection: the rollback was not exercised";
  }
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

// tessera serve --draft on a fixed-state target: each sequence holds two state slots
// (its state and the one saved by its latest verify step); a rejection rolls `computed`
// back to the saved point and the next slice restores the state and re-feeds the
// accepted tokens. Requests interleaved, chunked and preempted must still produce what
// they produce alone, with drafts both accepted and rejected.
TEST(RecurrentGemmaServing, SpeculativeServingEqualsAloneRuns) {
  Worker w(kDir, WorkerOptions{});
  std::vector<std::vector<int32_t>> ps;
  for (const auto& prompt : prompts()) {
    std::vector<int32_t> p = prompt;
    for (int i = 0; i < 2; ++i) p.insert(p.end(), prompt.begin() + 1, prompt.end());  // repeats: n-gram hits
    ps.push_back(p);
  }
  SchedulerConfig sc;
  sc.max_batch_tokens = 24;
  sc.max_running = 64;
  sc.speculative_k = 4;
  for (const int64_t blocks : {int64_t{1} << 16, int64_t{14}}) {
    SCOPED_TRACE("KV blocks " + std::to_string(blocks));
    PerSequenceDraftProposer drafts(std::make_unique<NgramDraft>(3, 1));
    const Served got = serve(w, sc, blocks, 30, &drafts, ps);
    int64_t drafted = 0, accepted = 0;
    for (size_t i = 0; i < ps.size(); ++i) {
      EXPECT_EQ(got.tokens.at(i + 1), alone(w, ps[i], 30)) << "request " << i + 1;
      drafted += got.speculative.at(i + 1).drafted;
      accepted += got.speculative.at(i + 1).accepted;
    }
    EXPECT_GT(accepted, 0);
    EXPECT_LT(accepted, drafted) << "no rejection: the rollback was not exercised";
    EXPECT_GT(got.state_copies, 0);
    // After a rejection the re-feed and the next drafts share one slice (no extra pass).
    EXPECT_GT(got.folded, 0);
    EXPECT_LT(got.max_slot, w.state_slots());
    if (blocks == 14) EXPECT_GT(got.preemptions, 0);
  }
  // Half the slots run: each sequence holds two.
  sc.state_slots = 8;
  EXPECT_EQ(Scheduler(sc, 100, 16).config().max_running, 4);
  sc.state_slots = 1;
  EXPECT_THROW(Scheduler(sc, 100, 16), Error);
}

}  // namespace
}  // namespace tessera
