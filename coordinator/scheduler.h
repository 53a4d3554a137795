// The serving scheduler: iteration-level continuous batching (Orca / vLLM style) as a
// deterministic function of the request list, so it is tested without workers.
//
// Each iteration schedule() builds one StepPlan:
//  1. cancelled / finished sequences leave (blocks back to the pool, ids in release);
//  2. running sequences that decode (one pending token) get one token each, in
//     admission order;
//  3. running sequences still prefilling get a chunk of their pending tokens, within
//     what is left of the per-step token budget (chunked prefill);
//  4. waiting requests are admitted first-come first-served while the budget, the
//     running limit and the KV pool allow; a prompt's leading full blocks are taken
//     from the prefix cache when the same prefix was computed before.
// When a running sequence needs a block and none is left, the most recently admitted
// sequence not yet in this step is preempted by recompute: its blocks are released
// (published full blocks stay cached, so recomputing is mostly a prefix hit), and it
// goes back to the head of the queue with its generated tokens, which are re-prefilled.
// Several plans may be in flight at once (pipeline parallelism: schedule() again before
// the previous plan's apply()): a sequence is in at most one of them (it is skipped
// while its slice runs, never preempted then, and released only after its apply()).
// With a step-time bound (SchedulerConfig::max_step_seconds) and a cost model, steps
// are also sized by predicted time, not only by tokens.
// apply() feeds the step's result back: sampled tokens, prompt logprobs (echo), and
// finish reasons (stop token, max_tokens, context).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "coordinator/adaptive_k.h"
#include "coordinator/draft_proposer.h"
#include "coordinator/prefix_cache.h"
#include "coordinator/step_cost_model.h"
#include "worker/sampling.h"
#include "worker/step.h"

namespace tessera {

struct SchedulerConfig {
  int64_t max_batch_tokens = 256;  // new tokens per step (decodes + prefill chunks)
  int64_t max_running = 64;        // sequences in the batch at once
  int64_t max_waiting = 256;       // queue bound: add() refuses beyond it
  int64_t max_context = 0;         // positions per sequence (prompt + generated)
  bool prefix_caching = true;
  // Bound on a step's predicted wall time (StepCostModel), 0: none. Running sequences
  // each produce one token per step, so this bounds their inter-token latency:
  // prefill chunks shrink to what fits next to the decodes, and a request is admitted
  // only while the decode step of every running sequence plus it still fits. Until
  // the cost model has seen a few steps only the token budget applies.
  double max_step_seconds = 0;
  // Speculative decoding (docs/SPECULATIVE.md): draft tokens proposed per decoding
  // sequence and verified in one target pass (0: off; needs a DraftProposer in
  // schedule()). Requests that want top logprobs (n > 0) or prompt
  // logprobs decode plainly; the sampled token's logprob comes with verify steps too.
  int32_t speculative_k = 0;
  // Adaptive K (coordinator/adaptive_k.h): each sequence starts at speculative_k and
  // follows its own acceptance (1..8); its K survives preemption (it describes how
  // well the draft predicts this request's text, which recomputing does not change).
  bool speculative_adaptive = false;
  int32_t speculative_k_max = AdaptiveK::kMax;  // adaptive K grows up to this
  // Batch cap on verify work, 0: none. The decoding sequences of a step take at most
  // this many tokens together, sum of (K_i + 1): the largest K_i shrink first, down to
  // plain decoding (cap_draft_lengths). Plain decodes are never dropped for it.
  int64_t speculative_max_batch_tokens = 0;
  // Plans kept in flight together (the pipeline's stage count): each plan then takes
  // about running / depth of the decodes, so consecutive plans carry different
  // sequences and every stage has work.
  int32_t pipeline_depth = 1;
  // > 0: a fixed-state model (RecurrentGemma): every running sequence holds one of the
  // workers' state slots, taken at admission and returned at release or preemption
  // (which recomputes from position 0, resetting the slot). max_running is capped to it
  // and prefix caching is off (a cached block holds no recurrent state). With
  // speculative_k > 0 a sequence holds two: its state and the state before its latest
  // verify step (restored after a rejection, see Sequence::restore), so max_running is
  // capped to half.
  int64_t state_slots = 0;
  // Context parallelism (docs/CONTEXT_PARALLEL.md): ranks of the CP ring. Above 1 the
  // pool is every rank's and a block table covers a sequence's longest shard; steps
  // carry every rank's KV length, and prefix caching is off (a shard's blocks depend on
  // how the sequence was chunked, not only on its tokens).
  int cp = 1;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

struct SequenceRequest {
  uint64_t id = 0;
  std::vector<int32_t> prompt;        // non-empty
  int64_t max_tokens = 16;            // new tokens at most (0: prompt only, for echo)
  SamplingParams sampling;
  uint64_t rng_state = 1;             // xorshift64* state, != 0
  std::vector<int32_t> stop_tokens;   // end generation (not emitted)
  bool prompt_logprobs = false;       // echo: logprob (and top) of every prompt token
};

struct PromptLogprob {
  int64_t position = 0;  // >= 1: the token at this prompt position given the ones before
  float logprob = 0;
  std::vector<TokenLogprob> top;
};

// A request's speculative decoding so far (cumulative).
struct SpeculativeCounts {
  int64_t verify_steps = 0;  // target passes that verified a draft
  int64_t drafted = 0;       // draft tokens proposed
  int64_t accepted = 0;      // of which the target accepted
  int32_t final_k = 0;       // adaptive K only: the sequence's K after its latest verify
};

struct SequenceEvent {
  uint64_t id = 0;
  std::vector<PromptLogprob> prompt_logprobs;
  std::optional<SampleResult> token;  // a new generated token
  FinishReason finish = FinishReason::kNone;
  SpeculativeCounts speculative;
};

// An event that only ends request `id`.
inline SequenceEvent finish_event(uint64_t id, FinishReason reason) {
  SequenceEvent e;
  e.id = id;
  e.finish = reason;
  return e;
}

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, int64_t kv_blocks, int64_t kv_block_size);

  // Queues a request; false when the queue is full (the caller answers 429).
  bool add(SequenceRequest request);
  // Ends a request at the next schedule() (client gone, stop sequence found in text).
  void finish(uint64_t id, FinishReason reason);

  struct Iteration {
    StepPlan plan;                        // empty sequences: nothing to run
    std::vector<SequenceEvent> finished;  // ended without running (cancel, max_tokens 0)
    int64_t preempted = 0;
  };
  // `cost` (may be null) predicts step times for config().max_step_seconds; `drafts`
  // (may be null) proposes draft tokens when config().speculative_k > 0.
  Iteration schedule(const StepCostModel* cost = nullptr, DraftProposer* drafts = nullptr);
  // The result of the plan schedule() returned last (same order).
  std::vector<SequenceEvent> apply(const StepPlan& plan, const StepResult& result);

  int64_t waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t running() const { return static_cast<int64_t>(running_.size()); }
  int64_t preemptions() const { return preemptions_; }
  const PrefixCache& blocks() const { return cache_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  struct Sequence {
    SequenceRequest req;
    std::vector<int32_t> tokens;     // prompt + generated
    int64_t generated = 0;
    int64_t computed = 0;            // positions with KV in the cache
    int64_t logprobs_done = 1;       // prompt positions whose logprobs were reported
    std::vector<int32_t> table;
    std::vector<uint64_t> hashes;    // published (or matched) full blocks, in order
    std::vector<int64_t> cp_kv_lens; // CP only: KV entries each CP rank holds
    uint64_t rng_state = 1;
    uint64_t draft_rng = 1;          // the draft's own stream (speculative decoding)
    SpeculativeCounts speculative;
    AdaptiveK draft_k;               // K for its next verify (fixed unless adaptive)
    FinishReason finish = FinishReason::kNone;
    bool scheduled = false;          // has a slice in a plan in flight
    uint64_t arrival = 0;            // priority: earlier arrivals first, kept across preemption
    int32_t state_slot = -1;         // fixed-state models (SchedulerConfig::state_slots)
    // Fixed-state speculation: the slot holding the state at `computed` saved by the
    // latest verify step; after a rejection `computed` rolls back to that point and
    // `restore` copies it back before the next slice re-feeds the accepted tokens.
    int32_t backup_slot = -1;
    bool restore = false;
  };
  using SeqPtr = std::unique_ptr<Sequence>;

  void preempt(Sequence& s);
  // Allocates blocks so s covers `end` positions, preempting running sequences of lower
  // priority (later arrival) that are not in a plan in flight, lowest first. False when
  // it could not: s waits for the next plan when a lower-priority sequence in flight
  // holds blocks (it becomes preemptible once its step is applied), and is preempted
  // itself when only higher-priority sequences hold blocks. A sequence never preempts
  // one that arrived earlier, so the earliest always progresses (no preemption ping-pong
  // between plans in flight).
  bool reserve(Sequence& s, int64_t end, std::vector<SeqPtr>& running);
  void add_slice(Sequence& s, int64_t n, StepPlan& plan);
  void publish_blocks(Sequence& s);
  // Block-table slots s needs to take n more tokens (positions without CP, the longest
  // CP shard with it), and the most tokens that fit in `slots`.
  int64_t slots_after(const Sequence& s, int64_t n) const;
  int64_t tokens_that_fit(const Sequence& s, int64_t slots) const;
  Sequence* find_running(uint64_t id);

  SchedulerConfig config_;
  PrefixCache cache_;
  std::deque<SeqPtr> waiting_;
  std::vector<SeqPtr> running_;   // admission order
  std::vector<std::pair<uint64_t, FinishReason>> pending_finish_;
  uint64_t next_step_ = 1;
  uint64_t next_arrival_ = 0;
  int64_t preemptions_ = 0;
  std::vector<int32_t> free_state_slots_;  // fixed-state models only
  bool paired_slots_ = false;              // fixed-state + speculation: 2 slots per sequence
  void free_slots(Sequence& s);
};

}  // namespace tessera
