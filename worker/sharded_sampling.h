// Sampling when the LM head is vocab-parallel: each rank of the TP group holds the
// logits of one contiguous id range. The full logit vector is never gathered; ranks
// exchange only what the rule needs (DESIGN.md: "argmax / top-k / top-p without
// gathering full logits"):
//   greedy           one (value, id) pair per rank
//   top-k            k candidates per rank
//   plain multinomial  max, partition sum and one mass per rank (prefix sums over ranks)
//   top-p            max, sum, a threshold found by bisection over all-reduced masses,
//                    then the candidates above it (a small superset of the nucleus)
//   llama2.c top-p   the candidates above run.c's (1 - p) / (n - 1) cut-off
// Every rank of the group returns the same SampleResult and RNG state. Results equal
// the single-rank sampler's up to the order of floating-point sums across ranks;
// greedy and top-k are exact.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "collectives/communicator.h"
#include "worker/sampling.h"

namespace tessera {

// local: this rank's logits for ids [offset, offset + local.size()) of a vocabulary of
// vocab_size (modified as scratch). tp == nullptr or size 1: plain sample_token.
SampleResult sample_token_sharded(std::span<float> local, int64_t offset, int64_t vocab_size,
                                  const SamplingParams& params, uint64_t& rng_state, Communicator* tp);

// The k most likely tokens of one row (logit desc, id asc, as plain sampling orders
// them) with logprob = logit - log_z, from this rank's slice [offset, offset +
// local.size()); under TP every rank calls it and gets the same list (k candidates per
// rank are gathered). Speculative verify steps use it for top-n alternatives.
std::vector<TokenLogprob> top_logprobs_sharded(std::span<const float> local, int64_t offset, size_t k,
                                               float log_z, Communicator* tp);

}  // namespace tessera
