// The step-time bound (SchedulerConfig::max_step_seconds): the online cost model
// recovers a known cost function, and a scheduler driven by it keeps every step under
// the bound while the results stay those of each request alone.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "coordinator/scheduler.h"
#include "coordinator/step_cost_model.h"
#include "tests/serve/fake_worker.h"
#include "tests/serve/outcomes.h"

namespace tessera {
namespace {

// The "machine": 4 ms per step, 1.5 ms per token, 20 ns per attended pair.
double true_cost(const StepShape& s) { return 0.004 + 0.0015 * static_cast<double>(s.tokens) + 2e-8 * s.attended; }

StepShape shape_of(const StepPlan& plan) {
  StepShape s;
  for (const auto& q : plan.sequences) {
    s.tokens += static_cast<int64_t>(q.tokens.size());
    s.attended += attended_pairs(q.pos0, static_cast<int64_t>(q.tokens.size()));
  }
  return s;
}

TEST(StepCostModel, RecoversAKnownCostFunction) {
  StepCostModel m;
  EXPECT_FALSE(m.ready());
  EXPECT_EQ(m.predict({10, 100}), 0);
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    StepShape s{1 + static_cast<int64_t>(rng() % 256), 0};
    s.attended = attended_pairs(static_cast<int64_t>(rng() % 4096), s.tokens);
    m.observe(s, true_cost(s));
  }
  ASSERT_TRUE(m.ready());
  for (StepShape s : {StepShape{1, attended_pairs(10, 1)}, StepShape{16, attended_pairs(2000, 16)},
                      StepShape{256, attended_pairs(0, 256)}})
    EXPECT_NEAR(m.predict(s), true_cost(s), 0.02 * true_cost(s)) << s.tokens << " tokens";
}

TEST(StepCostModel, FollowsAChangeOfSpeed) {
  StepCostModel m(0.9);
  std::mt19937 rng(3);
  auto feed = [&](double factor) {
    for (int i = 0; i < 100; ++i) {
      StepShape s{1 + static_cast<int64_t>(rng() % 64), 0};
      s.attended = attended_pairs(static_cast<int64_t>(rng() % 512), s.tokens);
      m.observe(s, factor * true_cost(s));
    }
  };
  feed(1);
  feed(2);  // the machine got twice as slow (other load)
  const StepShape s{32, attended_pairs(256, 32)};
  EXPECT_NEAR(m.predict(s), 2 * true_cost(s), 0.05 * true_cost(s));
}

// Runs requests to completion; the cost model learns from the true cost of each step.
struct RunResult {
  std::map<uint64_t, testing::Outcome> out;
  double max_cost = 0;            // over steps planned once the model was ready
  int64_t max_running = 0, steps = 0;
};

RunResult run_all(const std::vector<SequenceRequest>& reqs, double max_step_seconds, int64_t budget = 256) {
  SchedulerConfig c;
  c.max_batch_tokens = budget;
  c.max_running = 64;
  c.max_waiting = 256;
  c.max_step_seconds = max_step_seconds;
  Scheduler sched(c, 512, 8);
  testing::FakeWorker worker(512, 8, 97);
  StepCostModel cost;
  // Warm the model up the way a server does: its first steps are ordinary ones.
  for (int i = 0; i < 12; ++i) {
    const StepShape s{1 + 20 * i, attended_pairs(30 * i, 1 + 20 * i)};
    cost.observe(s, true_cost(s));
  }
  for (const auto& r : reqs) EXPECT_TRUE(sched.add(r));
  RunResult result;
  auto take = [&](const std::vector<SequenceEvent>& events) { testing::record_events(result.out, events); };
  for (int i = 0; i < 20000 && (sched.running() > 0 || sched.waiting() > 0); ++i) {
    Scheduler::Iteration it = sched.schedule(&cost);
    take(it.finished);
    if (it.plan.sequences.empty()) continue;
    const StepShape s = shape_of(it.plan);
    result.max_cost = std::max(result.max_cost, true_cost(s));
    result.max_running = std::max(result.max_running, sched.running());
    take(sched.apply(it.plan, worker.run_step(it.plan)));
    cost.observe(s, true_cost(s));
    ++result.steps;
  }
  EXPECT_EQ(sched.running() + sched.waiting(), 0);
  return result;
}

std::vector<SequenceRequest> burst(int n) {
  std::vector<SequenceRequest> reqs;
  for (int i = 0; i < n; ++i) {
    SequenceRequest r;
    r.id = 1 + static_cast<uint64_t>(i);
    for (int j = 0; j < 64 + 5 * i; ++j) r.prompt.push_back((i * 7 + j * 3) % 97);
    r.max_tokens = 24 + i % 5;
    reqs.push_back(std::move(r));
  }
  return reqs;
}

TEST(StepTimeBound, KeepsEveryStepUnderTheBoundAndResultsExact) {
  const auto reqs = burst(32);
  const RunResult untimed = run_all(reqs, 0);
  // Without the bound a step carries up to 256 tokens (~0.39 s): the test can fail.
  ASSERT_GT(untimed.max_cost, 0.1);
  const double bound = 0.030;  // 30 ms: ~17 tokens per step
  const RunResult timed = run_all(reqs, bound);
  EXPECT_LE(timed.max_cost, bound * 1.02);
  // Admission stops while the decodes of all running sequences would not fit.
  EXPECT_LE(timed.max_running, 17);
  for (const auto& r : reqs) {
    EXPECT_EQ(timed.out.at(r.id).tokens, untimed.out.at(r.id).tokens) << "request " << r.id;
    EXPECT_EQ(timed.out.at(r.id).finish, FinishReason::kLength);
  }
}

TEST(StepTimeBound, AnImpossibleBoundStillMakesProgress) {
  // 1 ms is below the fixed cost of any step: each step still runs one sequence's
  // block-sized prefill chunk or its decode, and everything finishes.
  const auto reqs = burst(3);
  const RunResult timed = run_all(reqs, 0.001);
  for (const auto& r : reqs) EXPECT_EQ(timed.out.at(r.id).finish, FinishReason::kLength);
  EXPECT_EQ(timed.max_running, 1);  // one request at a time
}

}  // namespace
}  // namespace tessera
