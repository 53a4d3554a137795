// Token sampling on the last pipeline stage: logits never leave the worker in full.
//
// Two semantics, both exact re-implementations:
//  - kLlama2c: llama2.c run.c's sampler (temperature, then plain multinomial over the
//    vocabulary in index order, or top-p over probabilities sorted descending with its
//    (1 - p) / (n - 1) cut-off), driven by xorshift64*. Reproduces the published
//    stories260K samples byte for byte.
//  - kStandard: the order of llama.cpp / vLLM: top-k, temperature, softmax, top-p, then
//    one draw from the truncated distribution (same RNG).
// temperature == 0 is greedy (argmax, lowest id on ties) in both.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tessera {

enum class SamplerKind { kStandard, kLlama2c };

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // >= 1 or <= 0: off
  SamplerKind kind = SamplerKind::kStandard;
  int32_t n_logprobs = -1;   // < 0: none; 0: the sampled token's; n > 0: also the top n
};

// llama2.c's xorshift64* generator. The state travels with the sequence (in the step
// plan and back in the result), so sampling stays reproducible wherever it runs.
uint32_t rng_next_u32(uint64_t& state);
float rng_next_f32(uint64_t& state);  // in [0, 1)

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
};

struct SampleResult {
  int32_t token = 0;
  float logprob = 0;                // log p(token), temperature-1 softmax (when asked)
  std::vector<TokenLogprob> top;    // n_logprobs most likely tokens, descending
};

// Samples one token from logits (modified in place as scratch). rng_state advances by
// exactly one draw when temperature > 0 (none when greedy).
SampleResult sample_token(std::span<float> logits, const SamplingParams& params, uint64_t& rng_state);

// Index of the largest value, lowest index on ties.
int32_t argmax(std::span<const float> values);

}  // namespace tessera
