// The step plan: what the coordinator asks every worker to do in one iteration, and
// what comes back from the last pipeline stage. One shape for every model family:
// later features add fields, not new messages (DESIGN.md, "The step").
//
// These are plain values; the Cap'n Proto schema of the control plane mirrors them
// field for field when steps travel between processes.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/sampling.h"

namespace tessera {

struct SequenceStep {
  uint64_t seq_id = 0;
  // New tokens at positions pos0 .. pos0 + n - 1: a prefill chunk, one decode token,
  // or K + 1 tokens to verify a speculative draft.
  std::vector<int32_t> tokens;
  int64_t pos0 = 0;
  // KV block ids (the coordinator's allocator) covering positions [0, pos0 + n).
  std::vector<int32_t> block_table;
  // Recurrent-state slot (Griffin / RecurrentGemma); -1 when the model has none.
  int32_t state_slot = -1;
  // Handles of cross-attention inputs already encoded on the workers (RETRO
  // neighbours, Flamingo visual tokens, Perceiver AR's long prefix); empty for
  // decoder-only models.
  std::vector<uint64_t> cross_inputs;
  // Sample (and report) the last n_outputs positions: 1 for prefill-then-decode and
  // decode, K + 1 for a verify step, 0 for a prefill chunk that does not end the prompt.
  int32_t n_outputs = 1;
  SamplingParams sampling;
  uint64_t rng_state = 0;     // advanced by sampling, returned in the result
  bool return_logits = false; // copy the n_outputs full logit rows back (scoring, tests)
  // Speculative verify (docs/SPECULATIVE.md). Non-empty: the last K = draft_tokens.size()
  // entries of `tokens` are a draft's proposals (equal to draft_tokens), n_outputs must
  // be K + 1, and the last stage runs the acceptance rule of Chen et al. instead of
  // sampling every position.
  std::vector<int32_t> draft_tokens;
  // The draft's distribution q, [K][vocab], each row what draft_tokens[i] was sampled
  // from (after the same temperature / top-k / top-p). Empty: a deterministic draft
  // (q is one-hot on the proposed token: n-gram lookup, greedy drafts), still exact.
  std::vector<float> draft_probs;
  // Context parallelism (model/cp_layout.h): the KV entries each CP rank holds before
  // this step, in CP rank order (they add up to pos0); the block table then covers the
  // longest shard instead of [0, pos0 + n). Empty without CP.
  std::vector<int64_t> cp_kv_lens;
};

// Copy a fixed-state model's sequence state from slot src into slot dst.
struct StateCopy {
  int32_t src = 0, dst = 0;
};

struct StepPlan {
  uint64_t step_id = 0;
  std::vector<SequenceStep> sequences;
  std::vector<uint64_t> release;  // sequences finished since the last step
  // Fixed-state models (RecurrentGemma): state slot copies every worker applies, in
  // order, before the forward: the coordinator's save (copy into a spare slot) and
  // restore (copy back) for preemption and speculative rollback. docs/RECURRENT_GEMMA.md.
  std::vector<StateCopy> state_copies;
};

struct SequenceOutput {
  uint64_t seq_id = 0;
  std::vector<SampleResult> samples;  // one per output position
  uint64_t rng_state = 0;
  std::vector<float> logits;          // [n_outputs][vocab] when return_logits
  // Verify steps only (draft_tokens non-empty): how many draft tokens were accepted
  // (0..K), and the token sampled after them (the correction on a rejection, the bonus
  // token when all K were accepted). samples then holds accepted + 1 entries: the
  // accepted draft tokens and extra_token. -1 for ordinary steps.
  int32_t accepted = -1;
  int32_t extra_token = -1;
};

struct StepResult {
  uint64_t step_id = 0;
  std::vector<SequenceOutput> outputs;  // in plan order
  double forward_seconds = 0;           // model forward on this worker
  double sample_seconds = 0;
};

}  // namespace tessera
