#include "coordinator/scheduler.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/serve/fake_worker.h"
#include "tests/serve/outcomes.h"

namespace tessera {
namespace {

using testing::FakeWorker;
using testing::Outcome;

// Runs the scheduler against the fake worker until every request has finished.
struct Harness {
  Harness(SchedulerConfig c, int64_t blocks, int64_t bs) : sched(c, blocks, bs), worker(blocks, bs, 97) {}
  Scheduler sched;
  FakeWorker worker;
  std::map<uint64_t, Outcome> out;
  int64_t steps = 0, max_step_tokens = 0;

  void take(const std::vector<SequenceEvent>& events) { testing::record_events(out, events); }
  void step() {
    Scheduler::Iteration it = sched.schedule();
    take(it.finished);
    if (it.plan.sequences.empty()) return;
    int64_t n = 0;
    for (const auto& s : it.plan.sequences) n += static_cast<int64_t>(s.tokens.size());
    max_step_tokens = std::max(max_step_tokens, n);
    take(sched.apply(it.plan, worker.run_step(it.plan)));
    ++steps;
  }
  void run(int64_t limit = 10000) {
    for (int64_t i = 0; i < limit && (sched.running() > 0 || sched.waiting() > 0); ++i) step();
    step();  // drains finished sequences
    ASSERT_EQ(sched.running(), 0);
    ASSERT_EQ(sched.waiting(), 0);
  }
};

SequenceRequest request(uint64_t id, int n_prompt, int64_t max_tokens, int32_t first = 1) {
  SequenceRequest r;
  r.id = id;
  for (int i = 0; i < n_prompt; ++i) r.prompt.push_back((first + i * 3) % 97);
  r.max_tokens = max_tokens;
  return r;
}

SchedulerConfig config(int64_t budget = 64) {
  SchedulerConfig c;
  c.max_batch_tokens = budget;
  c.max_running = 16;
  c.max_waiting = 64;
  return c;
}

Outcome solo(const SequenceRequest& r, int64_t blocks = 64, int64_t bs = 4) {
  Harness h(config(), blocks, bs);
  EXPECT_TRUE(h.sched.add(r));
  h.run();
  return h.out[r.id];
}

TEST(Scheduler, GeneratesMaxTokensThenLength) {
  Outcome o = solo(request(1, 5, 7));
  EXPECT_EQ(o.tokens.size(), 7u);
  EXPECT_EQ(o.finish, FinishReason::kLength);
}

TEST(Scheduler, StopTokenEndsWithoutBeingEmitted) {
  SequenceRequest r = request(1, 5, 20);
  const Outcome free_run = solo(r);
  ASSERT_GE(free_run.tokens.size(), 4u);
  r.stop_tokens = {free_run.tokens[3]};
  Outcome o = solo(r);
  EXPECT_EQ(o.finish, FinishReason::kStop);
  EXPECT_EQ(o.tokens, std::vector<int32_t>(free_run.tokens.begin(), free_run.tokens.begin() + 3));
}

TEST(Scheduler, ChunkedPrefillRespectsTheTokenBudget) {
  Harness h(config(16), 64, 4);
  ASSERT_TRUE(h.sched.add(request(1, 50, 3)));
  h.run();
  EXPECT_LE(h.max_step_tokens, 16);
  EXPECT_EQ(h.steps, 4 + 2);  // 16+16+16+2 prompt tokens, then two decodes
  EXPECT_EQ(h.out[1].tokens, solo(request(1, 50, 3)).tokens);
}

TEST(Scheduler, ConcurrentRequestsEqualTheirSoloRuns) {
  Harness h(config(24), 128, 4);
  std::vector<SequenceRequest> reqs;
  for (int i = 0; i < 10; ++i) reqs.push_back(request(100 + i, 3 + 7 * i, 5 + 3 * i, i));
  for (const auto& r : reqs) ASSERT_TRUE(h.sched.add(r));
  h.run();
  for (const auto& r : reqs) {
    EXPECT_EQ(h.out[r.id].tokens, solo(r).tokens) << "request " << r.id;
    EXPECT_EQ(h.out[r.id].finish, FinishReason::kLength);
  }
  EXPECT_EQ(h.sched.blocks().used(), 0);
}

TEST(Scheduler, PreemptsByRecomputeWhenBlocksRunOutAndStaysExact) {
  SchedulerConfig c = config(32);
  c.prefix_caching = false;
  Harness h(c, 12, 4);  // 48 positions for three requests that each grow to 30
  std::vector<SequenceRequest> reqs;
  for (int i = 0; i < 3; ++i) reqs.push_back(request(i + 1, 10, 20, 5 * i));
  for (const auto& r : reqs) ASSERT_TRUE(h.sched.add(r));
  h.run();
  EXPECT_GT(h.sched.preemptions(), 0);
  for (const auto& r : reqs) EXPECT_EQ(h.out[r.id].tokens, solo(r).tokens) << "request " << r.id;
  EXPECT_EQ(h.sched.blocks().used(), 0);
}

TEST(Scheduler, PreemptionWithPrefixCachingStaysExact) {
  Harness h(config(32), 12, 4);
  std::vector<SequenceRequest> reqs;
  for (int i = 0; i < 4; ++i) reqs.push_back(request(i + 1, 9, 18, 2 * i));
  for (const auto& r : reqs) ASSERT_TRUE(h.sched.add(r));
  h.run();
  EXPECT_GT(h.sched.preemptions(), 0);
  for (const auto& r : reqs) EXPECT_EQ(h.out[r.id].tokens, solo(r).tokens) << "request " << r.id;
}

TEST(Scheduler, BoundedQueueRefusesWhenFull) {
  SchedulerConfig c = config();
  c.max_waiting = 2;
  Scheduler s(c, 16, 4);
  EXPECT_TRUE(s.add(request(1, 3, 1)));
  EXPECT_TRUE(s.add(request(2, 3, 1)));
  EXPECT_FALSE(s.add(request(3, 3, 1)));
  (void)s.schedule();  // both admitted: room again
  EXPECT_TRUE(s.add(request(3, 3, 1)));
}

TEST(Scheduler, AdmissionIsLimitedByKvCapacity) {
  SchedulerConfig c = config(64);
  Scheduler s(c, 4, 4);  // 16 positions
  ASSERT_TRUE(s.add(request(1, 12, 2)));
  ASSERT_TRUE(s.add(request(2, 12, 2)));
  Scheduler::Iteration it = s.schedule();
  // The first takes 3 blocks, the second gets a partial chunk of what is left.
  ASSERT_EQ(it.plan.sequences.size(), 2u);
  EXPECT_EQ(it.plan.sequences[0].tokens.size(), 12u);
  EXPECT_EQ(it.plan.sequences[1].tokens.size(), 4u);
  EXPECT_EQ(it.plan.sequences[1].n_outputs, 0);
  EXPECT_EQ(s.blocks().available(), 0);
}

TEST(Scheduler, CancelReleasesBlocksAndReportsOnce) {
  Harness h(config(), 32, 4);
  ASSERT_TRUE(h.sched.add(request(1, 10, 100)));
  ASSERT_TRUE(h.sched.add(request(2, 10, 5)));
  h.step();
  h.step();
  h.sched.finish(1, FinishReason::kCancelled);
  h.sched.finish(1, FinishReason::kCancelled);
  h.run();
  EXPECT_EQ(h.out[1].finish, FinishReason::kCancelled);
  EXPECT_EQ(h.out[1].tokens.size(), 2u);
  EXPECT_EQ(h.out[2].tokens.size(), 5u);
  EXPECT_EQ(h.sched.blocks().used(), 0);
}

TEST(Scheduler, CancelWhileWaiting) {
  SchedulerConfig c = config();
  c.max_running = 1;
  Harness h(c, 32, 4);
  ASSERT_TRUE(h.sched.add(request(1, 4, 3)));
  ASSERT_TRUE(h.sched.add(request(2, 4, 3)));
  h.sched.finish(2, FinishReason::kCancelled);
  h.run();
  EXPECT_EQ(h.out[2].finish, FinishReason::kCancelled);
  EXPECT_TRUE(h.out[2].tokens.empty());
  EXPECT_EQ(h.out[1].tokens.size(), 3u);
}

TEST(Scheduler, PrefixCacheReusesBlocksOfAnEarlierRequest) {
  Harness h(config(), 64, 4);
  SequenceRequest a = request(1, 33, 4), b = request(2, 33, 4);
  b.prompt.back() = 50;  // same first 32 tokens
  ASSERT_TRUE(h.sched.add(a));
  h.run();
  ASSERT_TRUE(h.sched.add(b));
  Scheduler::Iteration it = h.sched.schedule();
  ASSERT_EQ(it.plan.sequences.size(), 1u);
  EXPECT_EQ(it.plan.sequences[0].pos0, 32);
  EXPECT_EQ(it.plan.sequences[0].tokens.size(), 1u);
  h.take(h.sched.apply(it.plan, h.worker.run_step(it.plan)));
  h.run();
  EXPECT_GE(h.sched.blocks().hits(), 8);
  EXPECT_EQ(h.out[2].tokens, solo(b).tokens);
}

TEST(Scheduler, IdenticalPromptKeepsOneTokenToCompute) {
  Harness h(config(), 64, 4);
  ASSERT_TRUE(h.sched.add(request(1, 8, 2)));
  h.run();
  ASSERT_TRUE(h.sched.add(request(2, 8, 2)));
  Scheduler::Iteration it = h.sched.schedule();
  ASSERT_EQ(it.plan.sequences.size(), 1u);
  EXPECT_EQ(it.plan.sequences[0].pos0, 4);  // one block reused, the last one recomputed
  h.take(h.sched.apply(it.plan, h.worker.run_step(it.plan)));
  h.run();
  EXPECT_EQ(h.out[2].tokens, h.out[1].tokens);
}

TEST(Scheduler, EchoReportsEveryPromptLogprob) {
  Harness h(config(8), 64, 4);  // chunks of 8 over a 20-token prompt
  SequenceRequest r = request(1, 20, 0);
  r.prompt_logprobs = true;
  r.sampling.n_logprobs = 2;
  ASSERT_TRUE(h.sched.add(r));
  h.run();
  const Outcome& o = h.out[1];
  EXPECT_EQ(o.finish, FinishReason::kLength);
  EXPECT_TRUE(o.tokens.empty());
  ASSERT_EQ(o.prompt_logprobs.size(), 19u);
  for (size_t i = 0; i < o.prompt_logprobs.size(); ++i) {
    EXPECT_EQ(o.prompt_logprobs[i].position, static_cast<int64_t>(i + 1));
    EXPECT_LT(o.prompt_logprobs[i].logprob, 0.0f);
    EXPECT_EQ(o.prompt_logprobs[i].top.size(), 2u);
  }
}

TEST(Scheduler, MaxTokensZeroWithoutEchoFinishesAtOnce) {
  Harness h(config(), 16, 4);
  ASSERT_TRUE(h.sched.add(request(1, 4, 0)));
  h.run();
  EXPECT_EQ(h.out[1].finish, FinishReason::kLength);
  EXPECT_EQ(h.steps, 0);
}

TEST(Scheduler, StopsAtTheContext) {
  SchedulerConfig c = config();
  c.max_context = 12;
  Harness h(c, 16, 4);
  ASSERT_TRUE(h.sched.add(request(1, 8, 100)));
  h.run();
  EXPECT_EQ(h.out[1].tokens.size(), 4u);
  EXPECT_EQ(h.out[1].finish, FinishReason::kLength);
}

}  // namespace
}  // namespace tessera
