// A worker stand-in for scheduler tests: it keeps a token per KV slot (block, offset)
// written through the step's block tables, and "samples" a token that hashes every
// token of the sequence read back through the table. A wrong table, a clobbered shared
// block or a mixed-up batch changes the output, so equality with a solo run proves the
// bookkeeping right.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/step.h"

namespace tessera::testing {

class FakeWorker {
 public:
  FakeWorker(int64_t n_blocks, int64_t block_size, int32_t vocab)
      : block_size_(block_size), vocab_(vocab), slots_(static_cast<size_t>(n_blocks * block_size), -1) {}

  StepResult run_step(const StepPlan& plan) {
    StepResult r;
    r.step_id = plan.step_id;
    for (const SequenceStep& s : plan.sequences) {
      SequenceOutput out;
      out.seq_id = s.seq_id;
      out.rng_state = s.rng_state;
      const int64_t n = static_cast<int64_t>(s.tokens.size());
      for (int64_t i = 0; i < n; ++i) slot(s, s.pos0 + i) = s.tokens[static_cast<size_t>(i)];
      for (int64_t i = n - s.n_outputs; i < n; ++i) {
        const int32_t next = next_token(s, s.pos0 + i);
        SampleResult sr;
        sr.token = next;
        sr.logprob = -0.5f;
        out.samples.push_back(sr);
        if (s.return_logits)
          for (int32_t v = 0; v < vocab_; ++v) out.logits.push_back(v == next ? 4.0f : 0.0f);
      }
      r.outputs.push_back(std::move(out));
    }
    return r;
  }

  // The token after positions 0..pos of a sequence (reads back through the table).
  int32_t next_token(const SequenceStep& s, int64_t pos) {
    uint64_t h = 1469598103934665603ull;
    for (int64_t p = 0; p <= pos; ++p) h = (h ^ static_cast<uint64_t>(slot(s, p) + 7)) * 1099511628211ull;
    return static_cast<int32_t>((h >> 17) % static_cast<uint64_t>(vocab_));
  }

 private:
  int32_t& slot(const SequenceStep& s, int64_t pos) {
    const int32_t block = s.block_table.at(static_cast<size_t>(pos / block_size_));
    return slots_.at(static_cast<size_t>(block * block_size_ + pos % block_size_));
  }
  int64_t block_size_;
  int32_t vocab_;
  std::vector<int32_t> slots_;
};

}  // namespace tessera::testing
