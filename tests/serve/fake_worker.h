// A worker stand-in for scheduler tests: it keeps a token per KV slot (block, offset)
// written through the step's block tables, and "samples" a token that hashes every
// token of the sequence read back through the table. A wrong table, a clobbered shared
// block or a mixed-up batch changes the output, so equality with a solo run proves the
// bookkeeping right. Speculative verify steps follow the greedy rule: draft tokens are
// accepted while they equal the fake's next token, then one correction (or bonus).
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
      if (!s.draft_tokens.empty()) {  // greedy verify: accept while the draft equals the argmax
        const int64_t k = static_cast<int64_t>(s.draft_tokens.size());
        out.accepted = 0;
        for (int64_t j = 0; j <= k; ++j) {
          SampleResult sr;
          sr.token = next_token(s, s.pos0 + n - k - 1 + j);
          out.samples.push_back(sr);
          if (j == k || sr.token != s.draft_tokens[static_cast<size_t>(j)]) {
            out.extra_token = sr.token;
            break;
          }
          ++out.accepted;
        }
        r.outputs.push_back(std::move(out));
        continue;
      }
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
    uint64_t h = kHashSeed;
    for (int64_t p = 0; p <= pos; ++p) h = hash_step(h, slot(s, p));
    return token_of(h);
  }
  // The same function of a plain token list (what a perfect draft would propose).
  int32_t next_token(const std::vector<int32_t>& ctx) const {
    uint64_t h = kHashSeed;
    for (int32_t t : ctx) h = hash_step(h, t);
    return token_of(h);
  }

 private:
  static constexpr uint64_t kHashSeed = 1469598103934665603ull;
  static uint64_t hash_step(uint64_t h, int32_t t) { return (h ^ static_cast<uint64_t>(t + 7)) * 1099511628211ull; }
  int32_t token_of(uint64_t h) const { return static_cast<int32_t>((h >> 17) % static_cast<uint64_t>(vocab_)); }
  int32_t& slot(const SequenceStep& s, int64_t pos) {
    const int32_t block = s.block_table.at(static_cast<size_t>(pos / block_size_));
    return slots_.at(static_cast<size_t>(block * block_size_ + pos % block_size_));
  }
  int64_t block_size_;
  int32_t vocab_;
  std::vector<int32_t> slots_;
};

}  // namespace tessera::testing
