// Drafts for the serving loop (speculative decoding in `tessera serve`, docs/SPECULATIVE.md):
// one call proposes draft tokens for every decoding sequence of the next step, so a
// model draft runs one batched draft step per draft position for all of them instead
// of one sequence after another (coordinator/speculative_generator.h drives a single
// sequence for `tessera generate`).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/kv_block_allocator.h"
#include "coordinator/speculative_generator.h"
#include "coordinator/step_runner.h"

namespace tessera {

struct DraftRequest {
  uint64_t seq_id = 0;
  std::span<const int32_t> ctx;  // committed tokens: prompt + generated so far
  int32_t k = 0;                 // propose at most k tokens
  SamplingParams sampling;       // the request's (q is sampled with the same transforms)
  uint64_t* rng = nullptr;       // the draft's own RNG stream for this sequence
  std::vector<int32_t> tokens;   // out: the proposals (possibly fewer than k, or none)
  std::vector<float> probs;      // out: [tokens][vocab] q rows, or empty (deterministic)
};

class DraftProposer {
 public:
  virtual ~DraftProposer() = default;
  virtual void propose(std::span<DraftRequest> requests) = 0;
  // The sequence is gone (finished, cancelled or preempted): drop its draft state.
  virtual void release(uint64_t /*seq_id*/) {}
  virtual std::string name() const = 0;
  double seconds = 0;  // time spent proposing, cumulative
};

// A draft without per-sequence state (prompt lookup), asked once per sequence.
class PerSequenceDraftProposer final : public DraftProposer {
 public:
  explicit PerSequenceDraftProposer(std::unique_ptr<Draft> draft) : draft_(std::move(draft)) {}
  void propose(std::span<DraftRequest> requests) override;
  std::string name() const override { return draft_->name(); }

 private:
  std::unique_ptr<Draft> draft_;
};

// A draft model behind its own StepRunner (a whole-model worker in the coordinator's
// process) with its own KV pool. Each sequence keeps the tokens its draft cache holds;
// a proposal rolls back to the longest prefix still equal to the committed context,
// feeds the rest in one batched step (with every other sequence's catch-up), then runs
// k - 1 batched single-token steps. A sequence whose draft cache cannot grow gets no
// proposals this time (plain decoding), never an error.
class BatchedModelDraft final : public DraftProposer {
 public:
  BatchedModelDraft(StepRunner& runner, std::string name);
  void propose(std::span<DraftRequest> requests) override;
  void release(uint64_t seq_id) override;
  std::string name() const override { return name_; }

 private:
  struct State {
    std::vector<int32_t> fed;    // tokens whose K/V the draft cache holds, by position
    std::vector<int32_t> table;  // their blocks in this draft's pool
  };

  StepRunner& runner_;
  std::string name_;
  KvBlockAllocator allocator_;
  std::unordered_map<uint64_t, State> states_;
};

// `tessera serve --draft SPEC`: ngram, int8 (a Q8_0 copy of the target) or a checkpoint
// path with the target's vocabulary (see make_draft).
std::unique_ptr<DraftProposer> make_draft_proposer(const std::string& spec, const std::string& target_model,
                                                   const WorkerOptions& options, int64_t target_vocab);

}  // namespace tessera
