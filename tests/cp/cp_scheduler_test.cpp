// The serving scheduler under context parallelism (coordinator/scheduler.h, cp > 1): a
// fake CP ring of C pools stores each step's tokens where model/cp_layout.h places them
// (through the step's block table and cp_kv_lens) and "samples" a hash of the whole
// sequence read back from every rank's shard. Every position must be found exactly
// once, so a wrong table, a wrong KV length or a clobbered block changes the output;
// the outputs must equal the single-rank scheduler's (tests/serve/fake_worker.h hash).
#include <gtest/gtest.h>

#include <map>

#include "coordinator/scheduler.h"
#include "model/cp_layout.h"
#include "tests/serve/fake_worker.h"

namespace tessera {
namespace {

class CpFakeRing {
 public:
  CpFakeRing(int cp, int64_t n_blocks, int64_t block_size, int32_t vocab)
      : cp_(cp), bs_(block_size), vocab_(vocab),
        pools_(static_cast<size_t>(cp), std::vector<Entry>(static_cast<size_t>(n_blocks * block_size))) {}

  StepResult run_step(const StepPlan& plan) {
    StepResult r;
    for (const SequenceStep& s : plan.sequences) {
      EXPECT_EQ(static_cast<int>(s.cp_kv_lens.size()), cp_);
      int64_t held = 0;
      for (int64_t l : s.cp_kv_lens) held += l;
      EXPECT_EQ(held, s.pos0) << "seq " << s.seq_id;
      const int64_t n = static_cast<int64_t>(s.tokens.size());
      const CpPlacement p = cp_place(n, cp_, s.cp_kv_lens);
      std::vector<int64_t> lens = s.cp_kv_lens;
      for (int r = 0; r < cp_; ++r) {  // rank r stores its tokens at its next slots
        std::vector<int64_t> mine;
        if (p.replicated) {
          if (r == p.owner)
            for (int64_t i = 0; i < n; ++i) mine.push_back(i);
        } else {
          for (const CpSegment& seg : p.blocks[r])
            for (int64_t i = 0; i < seg.length; ++i) mine.push_back(seg.offset + i);
        }
        for (int64_t i : mine) slot(r, s, lens[r]++) = {s.pos0 + i, s.tokens[static_cast<size_t>(i)]};
      }
      // Read the whole sequence back from the shards: each position exactly once.
      std::vector<int32_t> seq(static_cast<size_t>(s.pos0 + n), -1);
      for (int r = 0; r < cp_; ++r)
        for (int64_t k = 0; k < lens[r]; ++k) {
          const Entry& e = slot(r, s, k);
          EXPECT_TRUE(e.pos >= 0 && e.pos < s.pos0 + n && seq[static_cast<size_t>(e.pos)] == -1)
              << "seq " << s.seq_id << " rank " << r << " slot " << k << " holds position " << e.pos;
          if (e.pos >= 0 && e.pos < s.pos0 + n) seq[static_cast<size_t>(e.pos)] = e.token;
        }
      SequenceOutput out;
      out.seq_id = s.seq_id;
      out.rng_state = s.rng_state;
      for (int64_t i = n - s.n_outputs; i < n; ++i) {
        uint64_t h = 1469598103934665603ull;  // FakeWorker::next_token's hash
        for (int64_t q = 0; q <= s.pos0 + i; ++q) h = (h ^ static_cast<uint64_t>(seq[q] + 7)) * 1099511628211ull;
        SampleResult sr;
        sr.token = static_cast<int32_t>((h >> 17) % static_cast<uint64_t>(vocab_));
        out.samples.push_back(sr);
      }
      r.outputs.push_back(std::move(out));
    }
    return r;
  }

 private:
  struct Entry {
    int64_t pos = -1;
    int32_t token = -1;
  };
  Entry& slot(int r, const SequenceStep& s, int64_t k) {
    const int32_t block = s.block_table.at(static_cast<size_t>(k / bs_));
    return pools_[static_cast<size_t>(r)].at(static_cast<size_t>(block * bs_ + k % bs_));
  }
  int cp_;
  int64_t bs_;
  int32_t vocab_;
  std::vector<std::vector<Entry>> pools_;
};

// Runs requests to completion; returns the generated tokens per request.
template <typename Worker>
std::map<uint64_t, std::vector<int32_t>> serve_all(Scheduler& sched, Worker& worker, int64_t* preemptions) {
  std::map<uint64_t, std::vector<int32_t>> out;
  for (int i = 0; i < 100000 && (sched.running() > 0 || sched.waiting() > 0); ++i) {
    Scheduler::Iteration it = sched.schedule();
    if (it.plan.sequences.empty()) continue;
    for (const SequenceEvent& e : sched.apply(it.plan, worker.run_step(it.plan)))
      if (e.token) out[e.id].push_back(e.token->token);
  }
  EXPECT_EQ(sched.running(), 0);
  EXPECT_EQ(sched.waiting(), 0);
  *preemptions = sched.preemptions();
  return out;
}

void expect_same_as_single_rank(int cp, int64_t blocks_per_rank, bool expect_preemption) {
  constexpr int64_t kBs = 4;
  constexpr int32_t kVocab = 97;
  std::vector<SequenceRequest> reqs;
  for (uint64_t id = 1; id <= 12; ++id) {
    SequenceRequest r;
    r.id = id;
    const int n = static_cast<int>(1 + (id * 37) % 90);
    for (int i = 0; i < n; ++i) r.prompt.push_back(static_cast<int32_t>((id * 7 + i * 3) % kVocab));
    r.max_tokens = static_cast<int64_t>(3 + id % 9);
    reqs.push_back(r);
  }
  SchedulerConfig one;
  one.max_batch_tokens = 48;
  one.max_running = 6;
  one.prefix_caching = true;
  Scheduler single(one, 4096, kBs);
  testing::FakeWorker fake(4096, kBs, kVocab);
  for (const auto& r : reqs) ASSERT_TRUE(single.add(r));
  int64_t pre_single = 0;
  const auto want = serve_all(single, fake, &pre_single);

  SchedulerConfig c = one;
  c.cp = cp;
  Scheduler sched(c, blocks_per_rank, kBs);
  EXPECT_FALSE(sched.config().prefix_caching) << "prefix caching must be off under CP";
  CpFakeRing ring(cp, blocks_per_rank, kBs, kVocab);
  for (const auto& r : reqs) ASSERT_TRUE(sched.add(r));
  int64_t preempted = 0;
  const auto got = serve_all(sched, ring, &preempted);
  EXPECT_EQ(got, want);
  EXPECT_EQ(sched.blocks().cached(), 0);
  if (expect_preemption) EXPECT_GT(preempted, 0) << "the small pool should have forced preemptions";
}

TEST(CpScheduler, Cp2MatchesSingleRank) { expect_same_as_single_rank(2, 4096, false); }
TEST(CpScheduler, Cp4MatchesSingleRank) { expect_same_as_single_rank(4, 4096, false); }
// 10 blocks of 4 per rank (~150 positions over 4 ranks) for 6 running sequences of up
// to 100 positions: preemption by recompute under CP.
TEST(CpScheduler, Cp4SmallPoolPreempts) { expect_same_as_single_rank(4, 10, true); }

}  // namespace
}  // namespace tessera
