#include "worker/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/error.h"

namespace tessera {

uint32_t rng_next_u32(uint64_t& state) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return static_cast<uint32_t>((state * 0x2545F4914F6CDD1Dull) >> 32);
}

float rng_next_f32(uint64_t& state) { return static_cast<float>(rng_next_u32(state) >> 8) / 16777216.0f; }

int32_t argmax(std::span<const float> values) {
  int32_t best = 0;
  for (size_t i = 1; i < values.size(); ++i)
    if (values[i] > values[best]) best = static_cast<int32_t>(i);
  return best;
}

namespace {

// In-place float softmax, max-subtracted; matches llama2.c's softmax() operation order.
void softmax_inplace(std::span<float> x) {
  float max_val = x[0];
  for (float v : x) max_val = std::max(max_val, v);
  float sum = 0.0f;
  for (float& v : x) {
    v = std::exp(v - max_val);
    sum += v;
  }
  for (float& v : x) v /= sum;
}

// log-softmax of raw logits at `token` and the top-n, computed in double.
void fill_logprobs(std::span<const float> logits, int32_t token, int32_t n_top, SampleResult& out) {
  double max_val = logits[0];
  for (float v : logits) max_val = std::max<double>(max_val, v);
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max_val);
  const double log_z = max_val + std::log(sum);
  out.logprob = static_cast<float>(logits[token] - log_z);
  if (n_top <= 0) return;
  const size_t n = std::min<size_t>(static_cast<size_t>(n_top), logits.size());
  std::vector<int32_t> idx(logits.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + n, idx.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  out.top.clear();
  for (size_t i = 0; i < n; ++i) out.top.push_back({idx[i], static_cast<float>(logits[idx[i]] - log_z)});
}

// llama2.c sample_mult: first index whose CDF (in index order) exceeds coin.
int32_t sample_multinomial(std::span<const float> probs, float coin) {
  float cdf = 0.0f;
  for (size_t i = 0; i < probs.size(); ++i) {
    cdf += probs[i];
    if (coin < cdf) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(probs.size() - 1);  // rounding errors
}

struct ProbIndex {
  float prob;
  int32_t index;
};

// llama2.c sample_topp: keep candidates with p >= (1 - topp) / (n - 1), sort descending
// (glibc qsort is a stable merge sort for arrays this size, hence stable_sort), cut the
// nucleus where the cumulative probability first exceeds topp, draw coin * mass.
int32_t sample_topp_llama2c(std::span<const float> probs, float topp, float coin) {
  const float cutoff = (1.0f - topp) / static_cast<float>(probs.size() - 1);
  std::vector<ProbIndex> cand;
  for (size_t i = 0; i < probs.size(); ++i)
    if (probs[i] >= cutoff) cand.push_back({probs[i], static_cast<int32_t>(i)});
  std::stable_sort(cand.begin(), cand.end(), [](const ProbIndex& a, const ProbIndex& b) { return a.prob > b.prob; });
  float cumulative = 0.0f;
  size_t last = cand.size() - 1;
  for (size_t i = 0; i < cand.size(); ++i) {
    cumulative += cand[i].prob;
    if (cumulative > topp) {
      last = i;
      break;
    }
  }
  const float r = coin * cumulative;
  float cdf = 0.0f;
  for (size_t i = 0; i <= last; ++i) {
    cdf += cand[i].prob;
    if (r < cdf) return cand[i].index;
  }
  return cand[last].index;
}

int32_t sample_llama2c(std::span<float> logits, const SamplingParams& p, uint64_t& rng) {
  for (float& v : logits) v /= p.temperature;
  softmax_inplace(logits);
  const float coin = rng_next_f32(rng);
  if (p.top_p <= 0.0f || p.top_p >= 1.0f) return sample_multinomial(logits, coin);
  return sample_topp_llama2c(logits, p.top_p, coin);
}

int32_t sample_standard(std::span<float> logits, const SamplingParams& p, uint64_t& rng) {
  const bool use_top_k = p.top_k > 0 && static_cast<size_t>(p.top_k) < logits.size();
  const bool use_top_p = p.top_p > 0.0f && p.top_p < 1.0f;
  if (!use_top_k && !use_top_p) {
    for (float& v : logits) v /= p.temperature;
    softmax_inplace(logits);
    return sample_multinomial(logits, rng_next_f32(rng));
  }
  // Candidates sorted by logit, descending (lowest id first on ties), cut to top-k.
  std::vector<ProbIndex> cand(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) cand[i] = {logits[i], static_cast<int32_t>(i)};
  auto by_logit = [](const ProbIndex& a, const ProbIndex& b) {
    return a.prob > b.prob || (a.prob == b.prob && a.index < b.index);
  };
  size_t n = cand.size();
  if (use_top_k) {
    n = static_cast<size_t>(p.top_k);
    std::partial_sort(cand.begin(), cand.begin() + n, cand.end(), by_logit);
  } else {
    std::sort(cand.begin(), cand.end(), by_logit);
  }
  cand.resize(n);
  // Temperature softmax over the survivors.
  const float max_logit = cand[0].prob;
  float sum = 0.0f;
  for (auto& c : cand) {
    c.prob = std::exp((c.prob - max_logit) / p.temperature);
    sum += c.prob;
  }
  for (auto& c : cand) c.prob /= sum;
  // Nucleus: smallest prefix whose mass reaches top_p.
  if (use_top_p) {
    float cumulative = 0.0f;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cumulative += cand[i].prob;
      if (cumulative >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand.resize(keep);
  }
  float mass = 0.0f;
  for (const auto& c : cand) mass += c.prob;
  const float r = rng_next_f32(rng) * mass;
  float cdf = 0.0f;
  for (const auto& c : cand) {
    cdf += c.prob;
    if (r < cdf) return c.index;
  }
  return cand.back().index;
}

}  // namespace

SampleResult sample_token(std::span<float> logits, const SamplingParams& params, uint64_t& rng_state) {
  TESSERA_REQUIRE(!logits.empty(), ErrorKind::kInternal, "sample_token: empty logits");
  TESSERA_REQUIRE(params.temperature >= 0 && std::isfinite(params.temperature), ErrorKind::kInvalidInput,
                  "temperature must be a finite number >= 0, got ", params.temperature);
  TESSERA_REQUIRE(params.top_k >= 0, ErrorKind::kInvalidInput, "top_k must be >= 0, got ", params.top_k);
  SampleResult result;
  const bool want_logprobs = params.n_logprobs >= 0;
  std::vector<float> raw;
  if (want_logprobs) raw.assign(logits.begin(), logits.end());
  if (params.temperature == 0.0f) {
    result.token = argmax(logits);
  } else if (params.kind == SamplerKind::kLlama2c) {
    result.token = sample_llama2c(logits, params, rng_state);
  } else {
    result.token = sample_standard(logits, params, rng_state);
  }
  if (want_logprobs) fill_logprobs(raw, result.token, params.n_logprobs, result);
  return result;
}

}  // namespace tessera
