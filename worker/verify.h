// Speculative verification on the last pipeline stage (Chen et al., arXiv 2302.01318;
// docs/SPECULATIVE.md). A verify step scores K + 1 positions: row i of the logits is the
// target's distribution p_i for the token after tokens[i], and draft token d_i (i < K)
// was proposed by a draft that sampled it from q_i.
//
// The modified rejection rule, position by position:
//   accept d_i with probability min(1, p_i(d_i) / q_i(d_i)) (one uniform draw);
//   on rejection sample from norm(max(0, p_i - q_i)) (one more draw) and stop;
//   when all K are accepted sample a bonus token from p_K (one draw).
// The emitted token at every position is then distributed exactly as p_i (Theorem 1 of
// the paper), whatever q is, as long as d_i really was drawn from q_i.
//
// p_i is the distribution sample_token draws from: temperature softmax, then top-k /
// top-p as the sampler kind defines them. temperature == 0 is the greedy case: accept
// d_i iff it is the argmax of p_i; the extra token is the argmax at the first mismatch
// (identical to plain greedy decoding).
//
// q: either [K][vocab] (a model draft's sampling distribution, after the same sampling
// transform) or empty, meaning a deterministic draft (q_i one-hot on d_i: prompt lookup,
// greedy drafts); the rule with a one-hot q accepts with probability p_i(d_i) and
// resamples from p_i with d_i removed, which is still exact.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "collectives/communicator.h"
#include "worker/sampling.h"

namespace tessera {

// The acceptance rule. kAcceptAll replaces p/q by 1 (every draft token is accepted):
// a deliberately broken rule that the distribution tests must detect, injected through
// WorkerOptions::acceptance so that nothing process-wide changes.
enum class AcceptanceRule { kExact, kAcceptAll };

struct VerifyOutcome {
  int32_t accepted = 0;               // draft tokens accepted (0..K)
  int32_t extra_token = -1;           // the correction or the bonus token
  std::vector<SampleResult> samples;  // accepted draft tokens, then extra_token
};

// The distribution sample_token draws from for these logits (temperature > 0), over the
// whole vocabulary (zeros outside the top-k / nucleus).
std::vector<float> sampling_distribution(std::span<const float> logits, const SamplingParams& params);

// Whole-vocabulary rows: logits [K + 1][vocab], draft [K], q [K][vocab] or empty.
VerifyOutcome verify_draft(std::span<const float> logits, int64_t vocab, std::span<const int32_t> draft,
                           std::span<const float> q, const SamplingParams& params, uint64_t& rng_state,
                           AcceptanceRule rule = AcceptanceRule::kExact);

// True when the vocab-parallel rule below cannot handle these parameters without the
// whole rows (top-k / top-p with temperature > 0): the worker then gathers the K + 1
// rows and uses verify_draft.
bool verify_needs_full_rows(const SamplingParams& params);

// Vocab-parallel rows: local [K + 1][local_cols] holds ids [offset, offset + local_cols)
// (modified as scratch); q as above, whole rows (each rank reads its slice). Greedy and
// plain temperature sampling; every rank returns the same outcome and RNG state. The
// ranks exchange per position: the max and the partition sum, p(d_i) from its owner,
// and on rejection one residual mass per rank (then the owner of the coin draws).
VerifyOutcome verify_draft_sharded(std::span<float> local, int64_t local_cols, int64_t offset, int64_t vocab,
                                   std::span<const int32_t> draft, std::span<const float> q,
                                   const SamplingParams& params, uint64_t& rng_state, Communicator* tp,
                                   AcceptanceRule rule = AcceptanceRule::kExact);

// Fills samples[i].logprob = log p(token) under the temperature-1 softmax of row i
// (what plain sampling reports for n_logprobs = 0), from the raw logits as the model
// produced them: rows [>= samples.size()][cols] of this rank's vocabulary slice
// starting at id offset. Under TP every rank calls it (three small all-reduces). With
// n_top > 0 also samples[i].top: the n_top most likely tokens of row i, as plain
// sampling reports them (k candidates per rank gathered under TP).
void fill_verify_logprobs(std::span<const float> raw_rows, int64_t cols, int64_t offset, int32_t n_top,
                          std::vector<SampleResult>& samples, Communicator* tp);

}  // namespace tessera
