// The interface every model family implements: run the new tokens of a batch of
// sequences through this worker's layers, appending their K/V to the paged cache, and
// produce logits for the positions the step asks for.
//
// One call = one step of the step plan (worker/step.h). A sequence's slice is a
// prefill chunk, one decode token, or K+1 tokens to verify a speculative draft; the
// model does not care which.
#pragma once

#include <cstdint>
#include <span>

#include "collectives/communicator.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace tessera {

struct ForwardSequence {
  std::span<const int32_t> tokens;        // new tokens, at positions pos0 .. pos0+n-1
  int64_t pos0 = 0;                       // KV for [0, pos0) is already in the cache
  std::span<const int32_t> block_table;   // covers [0, pos0 + tokens.size())
  int64_t n_outputs = 1;                  // logits for the last n_outputs new tokens
  int32_t state_slot = -1;                // fixed-state families: the sequence's state slot
                                          // (reset when pos0 == 0); -1 for KV-cache families
  // Context parallelism only (model/cp_layout.h): KV entries each CP rank holds before
  // this slice; the block table then covers this rank's shard, not [0, pos0 + n).
  std::span<const int64_t> cp_kv_lens;
};

// The peers a sharded model talks to; null means "no peers in that dimension" (the
// single-rank path makes no collective calls at all).
struct ModelComms {
  Communicator* tp = nullptr;  // this rank's tensor-parallel group
  Communicator* pp = nullptr;  // this rank's pipeline column (stage s talks to s - 1 and s + 1)
  Communicator* ep = nullptr;  // this rank's expert-parallel group (MoE layers, docs/MOE.md)
  Communicator* cp = nullptr;  // this rank's context-parallel ring (same pp and tp coordinates)
};

class DecoderModel {
 public:
  virtual ~DecoderModel() = default;
  virtual const ModelConfig& config() const = 0;
  // The last pipeline stage writes logits [sum of n_outputs][logits_cols()], sequence
  // after sequence: its vocabulary shard (logits_offset() is the id of column 0). Other
  // stages send their activations on and write nothing.
  virtual void forward(std::span<const ForwardSequence> batch, KvCache& cache, float* logits) = 0;
  virtual int64_t logits_cols() const = 0;
  virtual int64_t logits_offset() const = 0;
  // Fixed-state families (ModelConfig::fixed_state): how many per-sequence state slots
  // this worker holds, and a copy of one slot's state into another (the coordinator's
  // save / restore for preemption and rollback). Others hold none.
  virtual int64_t state_slots() const { return 0; }
  virtual void copy_state(int32_t src, int32_t dst);
};

}  // namespace tessera
