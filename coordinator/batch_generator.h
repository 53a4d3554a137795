// Many sequences through the step plan at once, in micro-batches kept in flight
// together: with pp pipeline stages and at least pp micro-batches, every stage has work
// (stage s runs micro-batch i while stage s + 1 runs micro-batch i - 1). Each
// micro-batch's first step prefills all its prompts; then one decode token per
// sequence per step. As soon as a micro-batch's result returns, its next step is
// submitted behind the others (a sliding window, no drain between rounds).
//
// This is the offline batch driver `tessera bench --sequences` uses; the serving
// scheduler (continuous batching) replaces the fixed micro-batches.
#pragma once

#include <cstdint>
#include <vector>

#include "coordinator/kv_block_allocator.h"
#include "coordinator/step_runner.h"
#include "worker/sampling.h"

namespace tessera {

struct BatchOptions {
  int64_t max_new_tokens = 64;
  int micro_batches = 1;
  SamplingParams sampling;
  uint64_t seed = 1;
};

struct BatchStats {
  int64_t sequences = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;  // until every micro-batch has its first tokens
  double total_seconds = 0;
  double decode_tokens_per_second() const;  // tokens after the first per sequence / decode time
};

// Returns every sequence's generated tokens (same order as prompts) and fills stats.
std::vector<std::vector<int32_t>> generate_batch(StepRunner& runner, KvBlockAllocator& allocator,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 const BatchOptions& options, BatchStats* stats);

}  // namespace tessera
