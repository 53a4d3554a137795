// Speculative generation of one sequence (Chen et al., arXiv 2302.01318;
// docs/SPECULATIVE.md): a draft proposes K tokens, the target scores the last accepted
// token and the K proposals in one verify step (K + 1 positions), and the last stage's
// acceptance rule (worker/verify.h) keeps the target's distribution exactly.
//
// The target is any StepRunner (one process, or TP x PP ranks under mpirun); drafts run
// in the coordinator's process. Rollback is a length change: the target's KV of
// rejected positions is overwritten by the next verify step, and a model draft keeps
// the tokens its cache holds and re-feeds from the first one that differs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coordinator/adaptive_k.h"
#include "coordinator/generator.h"
#include "coordinator/kv_block_allocator.h"
#include "coordinator/step_runner.h"
#include "worker/worker.h"

namespace tessera {

class Draft {
 public:
  virtual ~Draft() = default;
  // Proposes up to k tokens to follow ctx (the committed tokens: the prompt and what was
  // generated so far). tokens gets the proposals; probs gets [tokens][vocab], the
  // distribution each one was sampled from, or stays empty when the proposals are
  // deterministic (one-hot q; always the case for greedy). rng: the draft's own RNG.
  virtual void propose(std::span<const int32_t> ctx, int32_t k, const SamplingParams& sampling, uint64_t& rng,
                       std::vector<int32_t>& tokens, std::vector<float>& probs) = 0;
  // A new sequence starts: forget any state.
  virtual void reset() {}
  virtual std::string name() const = 0;
  double seconds = 0;  // time spent proposing
};

// A model with the target's vocabulary behind its own StepRunner (usually a
// LocalStepRunner on rank 0), with its own KV block allocator.
class ModelDraft final : public Draft {
 public:
  ModelDraft(StepRunner& runner, std::string name);
  void propose(std::span<const int32_t> ctx, int32_t k, const SamplingParams& sampling, uint64_t& rng,
               std::vector<int32_t>& tokens, std::vector<float>& probs) override;
  void reset() override;
  std::string name() const override { return name_; }
  int64_t context() const;

 private:
  // Feeds tokens at positions fed_.size() ..; returns the output of the last one.
  SequenceOutput feed(std::span<const int32_t> tokens, bool want_logits);

  StepRunner& runner_;
  std::string name_;
  KvBlockAllocator allocator_;
  SequenceStep seq_;
  std::vector<int32_t> fed_;  // the tokens whose K/V the draft's cache holds, by position
  uint64_t next_seq_id_ = 1;
};

// Prompt lookup: the tokens that followed the latest earlier occurrence of the context's
// last n tokens (n = max_n .. min_n), no model.
class NgramDraft final : public Draft {
 public:
  explicit NgramDraft(int32_t max_n = 3, int32_t min_n = 1) : max_n_(max_n), min_n_(min_n) {}
  void propose(std::span<const int32_t> ctx, int32_t k, const SamplingParams& sampling, uint64_t& rng,
               std::vector<int32_t>& tokens, std::vector<float>& probs) override;
  std::string name() const override { return "ngram"; }

 private:
  int32_t max_n_, min_n_;
};

struct SpeculativeOptions {
  int32_t k = 4;           // draft tokens per verify step (the start value when adaptive)
  bool adaptive = false;   // adapt K to the running acceptance (see docs/SPECULATIVE.md)
  int32_t k_min = AdaptiveK::kMin;
  int32_t k_max = AdaptiveK::kMax;
};

struct SpeculativeStats {
  int64_t verify_steps = 0;      // target passes after the prefill (verify or plain decode)
  int64_t drafted = 0;           // draft tokens proposed
  int64_t accepted = 0;          // of which accepted
  int64_t emitted = 0;           // tokens the verify steps produced (accepted + extra)
  double draft_seconds = 0;
  double target_seconds = 0;     // wall time of the target's verify steps
  double acceptance_rate() const { return drafted > 0 ? static_cast<double>(accepted) / drafted : 0; }
  double tokens_per_target_pass() const {
    return verify_steps > 0 ? static_cast<double>(emitted) / verify_steps : 0;
  }
};

class SpeculativeGenerator {
 public:
  // `target` and `draft` must outlive the generator.
  SpeculativeGenerator(StepRunner& target, Draft& draft, SpeculativeOptions options);

  // As Generator::generate, same options and callback; the tokens follow the target's
  // distribution exactly (greedy: the same tokens as Generator).
  GenerateStats generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                         const std::function<bool(int32_t)>& on_token);

  const SpeculativeStats& stats() const { return stats_; }  // of the last generate
  int32_t current_k() const { return k_.k(); }

 private:
  StepRunner& target_;
  Draft& draft_;
  SpeculativeOptions options_;
  KvBlockAllocator allocator_;
  SpeculativeStats stats_;
  AdaptiveK k_;  // fixed at options.k unless options.adaptive
  uint64_t next_seq_id_ = 1;
};

// A draft by name (`tessera generate --draft`): "ngram" (prompt lookup), "int8" (a Q8_0
// copy of target_model, self-speculation) or the path of another checkpoint with the
// target's vocabulary. Model drafts load their own whole-model Worker in this process
// (rank 0 under mpirun), owned by the returned draft. `options`: threads and KV size.
std::unique_ptr<Draft> make_draft(const std::string& spec, const std::string& target_model,
                                  const WorkerOptions& options, int64_t target_vocab);

// Draws an index from a distribution over the vocabulary (index order), for drafts.
int32_t draw_from(std::span<const float> probs, float coin);

}  // namespace tessera
