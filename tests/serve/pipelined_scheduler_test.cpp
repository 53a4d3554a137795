// Several plans in flight (pipeline parallelism, SchedulerConfig::pipeline_depth): the
// serving loop schedules the next plan before the previous one's result is applied.
// Plans in flight never share a sequence, every request's tokens equal its solo run,
// and a request cancelled while its slice runs ends once, with its blocks released.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

#include "coordinator/scheduler.h"
#include "tests/serve/fake_worker.h"
#include "tests/serve/outcomes.h"

namespace tessera {
namespace {

using testing::FakeWorker;
using testing::Outcome;

struct Pipelined {
  Pipelined(int32_t depth, int64_t blocks) : sched(config(depth), blocks, 4), worker(blocks, 4, 97), depth(depth) {}
  static SchedulerConfig config(int32_t depth) {
    SchedulerConfig c;
    c.max_batch_tokens = 32;
    c.max_running = 16;
    c.pipeline_depth = depth;
    return c;
  }
  Scheduler sched;
  FakeWorker worker;
  int32_t depth;
  std::map<uint64_t, Outcome> out;
  int64_t max_in_flight = 0, overlapping_plans = 0;

  void take(const std::vector<SequenceEvent>& events) { testing::record_events(out, events); }
  // Runs to completion; `on_round` is called once per applied plan.
  void run(const std::function<void(int64_t round)>& on_round = nullptr) {
    std::deque<StepPlan> flight;
    for (int64_t round = 0; round < 20000; ++round) {
      while (static_cast<int32_t>(flight.size()) < depth) {
        Scheduler::Iteration it = sched.schedule();
        take(it.finished);
        if (it.plan.sequences.empty()) break;
        // No sequence is in two plans in flight.
        std::set<uint64_t> ids;
        for (const auto& p : flight)
          for (const auto& s : p.sequences) ids.insert(s.seq_id);
        for (const auto& s : it.plan.sequences) EXPECT_EQ(ids.count(s.seq_id), 0u) << "sequence in two plans";
        flight.push_back(std::move(it.plan));
      }
      max_in_flight = std::max<int64_t>(max_in_flight, static_cast<int64_t>(flight.size()));
      if (flight.size() > 1) ++overlapping_plans;
      if (flight.empty()) {
        if (sched.running() == 0 && sched.waiting() == 0) break;
        continue;
      }
      // The fake worker runs a plan when its result is taken: steps execute in
      // submission order, as on every pipeline stage.
      StepPlan plan = std::move(flight.front());
      flight.pop_front();
      take(sched.apply(plan, worker.run_step(plan)));
      if (on_round) on_round(round);
    }
    take(sched.schedule().finished);
    EXPECT_EQ(sched.running() + sched.waiting(), 0);
    EXPECT_EQ(sched.blocks().used(), 0);
  }
};

std::vector<SequenceRequest> requests(int n) {
  std::vector<SequenceRequest> reqs;
  for (int i = 0; i < n; ++i) {
    SequenceRequest r;
    r.id = 1 + static_cast<uint64_t>(i);
    for (int j = 0; j < 2 + 7 * i; ++j) r.prompt.push_back((i * 11 + j * 5) % 97);
    r.max_tokens = 4 + 3 * i;
    reqs.push_back(std::move(r));
  }
  return reqs;
}

TEST(PipelinedScheduler, TwoAndFourPlansInFlightEqualOneAtATime) {
  const auto reqs = requests(10);
  Pipelined one(1, 256);
  for (const auto& r : reqs) ASSERT_TRUE(one.sched.add(r));
  one.run();
  for (int32_t depth : {2, 4}) {
    Pipelined p(depth, 256);
    for (const auto& r : reqs) ASSERT_TRUE(p.sched.add(r));
    p.run();
    EXPECT_EQ(p.max_in_flight, depth) << "the pipeline never filled";
    EXPECT_GT(p.overlapping_plans, 10);
    for (const auto& r : reqs) {
      EXPECT_EQ(p.out[r.id].tokens, one.out[r.id].tokens) << "depth " << depth << ", request " << r.id;
      EXPECT_EQ(p.out[r.id].finish, FinishReason::kLength);
    }
  }
}

TEST(PipelinedScheduler, ExactUnderPreemption) {
  const auto reqs = requests(10);
  Pipelined one(1, 256);
  for (const auto& r : reqs) ASSERT_TRUE(one.sched.add(r));
  one.run();
  Pipelined p(2, 30);  // 120 positions for 10 requests of up to ~95: preemption
  for (const auto& r : reqs) ASSERT_TRUE(p.sched.add(r));
  p.run();
  EXPECT_GT(p.sched.preemptions(), 0);
  for (const auto& r : reqs) EXPECT_EQ(p.out[r.id].tokens, one.out[r.id].tokens) << "request " << r.id;
}

// Two or three sequences that cannot all fit the pool, with 2 and 4 plans in flight:
// they preempt, finish, and equal their one-plan runs. (The preemption ping-pong that a
// victim choice by position in the running list caused once decodes were spread over
// the plans - two sequences preempting each other forever - is reproduced by
// AdaptiveSpeculation.ExactWithPlansInFlight, which fails with that policy.)
TEST(PipelinedScheduler, ShortPoolWithPlansInFlightStaysExact) {
  for (const int32_t depth : {2, 4}) {
    for (const int n : {2, 3}) {
      std::vector<SequenceRequest> reqs;
      for (int i = 0; i < n; ++i) {
        SequenceRequest r;
        r.id = 1 + static_cast<uint64_t>(i);
        for (int j = 0; j < 20; ++j) r.prompt.push_back((i * 7 + j * 3) % 97);
        r.max_tokens = 140;  // 160 positions = 40 blocks each
        reqs.push_back(r);
      }
      Pipelined one(1, 4096);
      for (const auto& r : reqs) ASSERT_TRUE(one.sched.add(r));
      one.run();
      Pipelined p(depth, 48);  // 192 positions: not two sequences at full length
      for (const auto& r : reqs) ASSERT_TRUE(p.sched.add(r));
      p.run();
      EXPECT_GT(p.sched.preemptions(), 0) << "depth " << depth << ", " << n << " sequences";
      for (const auto& r : reqs)
        EXPECT_EQ(p.out[r.id].tokens, one.out[r.id].tokens) << "depth " << depth << ", request " << r.id;
    }
  }
}

TEST(PipelinedScheduler, CancelWhileInFlightEndsOnce) {
  const auto reqs = requests(6);
  Pipelined p(2, 256);
  for (const auto& r : reqs) ASSERT_TRUE(p.sched.add(r));
  p.run([&](int64_t round) {
    if (round == 3) p.sched.finish(5, FinishReason::kCancelled);
  });
  EXPECT_EQ(p.out[5].finish, FinishReason::kCancelled);
  EXPECT_LT(static_cast<int64_t>(p.out[5].tokens.size()), reqs[4].max_tokens);
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

// Under PP each plan in flight carries about running / depth of the decodes, so every
// pipeline stage has work: with 8 requests decoding at depth 2, no plan carries more
// than 4 one-token decode slices (the prefill pass must not take the decoders the
// first pass left to the next plan).
TEST(PipelinedScheduler, DecodesSpreadOverThePlansInFlight) {
  Pipelined p(2, 4096);
  std::vector<SequenceRequest> reqs;
  for (int i = 0; i < 8; ++i) {
    SequenceRequest r;
    r.id = 1 + static_cast<uint64_t>(i);
    r.prompt = {static_cast<int32_t>(3 + i), 5, 7};
    r.max_tokens = 40;
    reqs.push_back(r);
  }
  for (const auto& r : reqs) ASSERT_TRUE(p.sched.add(r));
  int64_t max_decodes = 0, plans_with_decodes = 0;
  std::deque<StepPlan> flight;
  for (int round = 0; round < 2000 && (p.sched.running() > 0 || p.sched.waiting() > 0 || !flight.empty()); ++round) {
    while (flight.size() < 2) {
      Scheduler::Iteration it = p.sched.schedule();
      p.take(it.finished);
      if (it.plan.sequences.empty()) break;
      int64_t decodes = 0;
      for (const auto& s : it.plan.sequences) decodes += s.tokens.size() == 1 && s.pos0 > 0;
      max_decodes = std::max(max_decodes, decodes);
      plans_with_decodes += decodes > 0;
      flight.push_back(std::move(it.plan));
    }
    if (flight.empty()) continue;
    StepPlan plan = std::move(flight.front());
    flight.pop_front();
    p.take(p.sched.apply(plan, p.worker.run_step(plan)));
  }
  EXPECT_LE(max_decodes, 4);
  EXPECT_GT(plans_with_decodes, 40);
  for (const auto& r : reqs) EXPECT_EQ(p.out.at(r.id).tokens.size(), 40u) << "request " << r.id;
}

}  // namespace
}  // namespace tessera
