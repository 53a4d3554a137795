#include "worker/sharded_sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"

namespace tessera {

namespace {

struct Cand {
  float value;  // logit or probability, as the phase says
  int32_t id;   // global token id
};
static_assert(sizeof(Cand) == 8);

bool by_value_then_id(const Cand& a, const Cand& b) { return a.value > b.value || (a.value == b.value && a.id < b.id); }

float allreduce_scalar(Communicator& c, float v, ReduceOp op) {
  c.allreduce(&v, 1, CommType::kF32, op);
  return v;
}

// Concatenation of every rank's list, in rank order (= global id order when each list
// is in id order). Lists may differ in length.
std::vector<Cand> allgather_candidates(Communicator& c, const std::vector<Cand>& mine) {
  const int n = c.size();
  int32_t count = static_cast<int32_t>(mine.size());
  std::vector<int32_t> counts(static_cast<size_t>(n));
  c.allgather(&count, counts.data(), 1, CommType::kI32);
  const int32_t max_count = *std::max_element(counts.begin(), counts.end());
  std::vector<Cand> padded(static_cast<size_t>(max_count), Cand{0, -1});
  std::copy(mine.begin(), mine.end(), padded.begin());
  std::vector<Cand> all(static_cast<size_t>(max_count) * n);
  c.allgather(padded.data(), all.data(), static_cast<size_t>(max_count) * sizeof(Cand), CommType::kU8);
  std::vector<Cand> out;
  for (int r = 0; r < n; ++r)
    for (int32_t i = 0; i < counts[r]; ++i) out.push_back(all[static_cast<size_t>(r) * max_count + i]);
  return out;
}

// The k best (logit desc, id asc) of this rank.
std::vector<Cand> local_top(std::span<const float> local, int64_t offset, size_t k) {
  std::vector<Cand> c(local.size());
  for (size_t i = 0; i < local.size(); ++i) c[i] = {local[i], static_cast<int32_t>(offset + static_cast<int64_t>(i))};
  k = std::min(k, c.size());
  std::partial_sort(c.begin(), c.begin() + k, c.end(), by_value_then_id);
  c.resize(k);
  return c;
}

std::vector<Cand> global_top(Communicator& tp, std::span<const float> local, int64_t offset, size_t k) {
  std::vector<Cand> all = allgather_candidates(tp, local_top(local, offset, k));
  k = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + k, all.end(), by_value_then_id);
  all.resize(k);
  return all;
}

// Draws from candidates sorted by probability (value = probability, not normalised
// over the candidates when `mass` is the global total).
int32_t draw(const std::vector<Cand>& cand, float r) {
  float cdf = 0.0f;
  for (const Cand& c : cand) {
    cdf += c.value;
    if (r < cdf) return c.id;
  }
  return cand.back().id;
}

// Plain multinomial in id order over probs = exp((l - max) / T) / z: the rank whose
// prefix holds the coin walks its ids.
int32_t sharded_multinomial(Communicator& tp, std::span<float> probs, int64_t offset, float coin) {
  float mine = 0.0f;
  for (float p : probs) mine += p;
  std::vector<float> masses(static_cast<size_t>(tp.size()));
  tp.allgather(&mine, masses.data(), 1, CommType::kF32);
  float before = 0.0f;
  int owner = tp.size() - 1;
  for (int r = 0; r < tp.size(); ++r) {
    if (coin < before + masses[r]) {
      owner = r;
      break;
    }
    if (r + 1 < tp.size()) before += masses[r];
  }
  int32_t id = -1;
  if (tp.rank() == owner) {
    float cdf = before;
    id = static_cast<int32_t>(offset + static_cast<int64_t>(probs.size()) - 1);
    for (size_t i = 0; i < probs.size(); ++i) {
      cdf += probs[i];
      if (coin < cdf) {
        id = static_cast<int32_t>(offset + static_cast<int64_t>(i));
        break;
      }
    }
  }
  tp.allreduce(&id, 1, CommType::kI32, ReduceOp::kMax);
  return id;
}

}  // namespace

std::vector<TokenLogprob> top_logprobs_sharded(std::span<const float> local, int64_t offset, size_t k,
                                               float log_z, Communicator* tp) {
  const std::vector<Cand> top = tp != nullptr && tp->size() > 1 ? global_top(*tp, local, offset, k)
                                                                 : local_top(local, offset, k);
  std::vector<TokenLogprob> out;
  out.reserve(top.size());
  for (const Cand& x : top) out.push_back({x.id, x.value - log_z});
  return out;
}

SampleResult sample_token_sharded(std::span<float> local, int64_t offset, int64_t vocab_size,
                                  const SamplingParams& p, uint64_t& rng, Communicator* tp) {
  if (tp == nullptr || tp->size() == 1) return sample_token(local, p, rng);
  TESSERA_REQUIRE(p.temperature >= 0 && std::isfinite(p.temperature), ErrorKind::kInvalidInput,
                  "temperature must be a finite number >= 0, got ", p.temperature);
  TESSERA_REQUIRE(p.top_k >= 0, ErrorKind::kInvalidInput, "top_k must be >= 0, got ", p.top_k);
  Communicator& c = *tp;
  const float kNegInf = -std::numeric_limits<float>::infinity();
  SampleResult result;

  // Log-probabilities (temperature 1) are computed from the raw logits first.
  float log_z = 0.0f;
  std::vector<Cand> top_logprobs;
  if (p.n_logprobs >= 0) {
    float mx = kNegInf;
    for (float v : local) mx = std::max(mx, v);
    mx = allreduce_scalar(c, mx, ReduceOp::kMax);
    double s = 0;
    for (float v : local) s += std::exp(static_cast<double>(v) - mx);
    log_z = mx + std::log(allreduce_scalar(c, static_cast<float>(s), ReduceOp::kSum));
    if (p.n_logprobs > 0) top_logprobs = global_top(c, local, offset, static_cast<size_t>(p.n_logprobs));
  }
  std::vector<float> raw;
  if (p.n_logprobs >= 0) raw.assign(local.begin(), local.end());

  if (p.temperature == 0.0f) {
    result.token = global_top(c, local, offset, 1)[0].id;
  } else {
    const bool llama2c = p.kind == SamplerKind::kLlama2c;
    const bool use_top_k = !llama2c && p.top_k > 0 && p.top_k < vocab_size;
    const bool use_top_p = p.top_p > 0.0f && p.top_p < 1.0f;
    if (use_top_k) {
      // Exactly the single-rank rule on the global top-k.
      std::vector<Cand> cand = global_top(c, local, offset, static_cast<size_t>(p.top_k));
      const float max_logit = cand[0].value;
      float sum = 0.0f;
      for (Cand& x : cand) sum += x.value = std::exp((x.value - max_logit) / p.temperature);
      for (Cand& x : cand) x.value /= sum;
      if (use_top_p) {
        float cumulative = 0.0f;
        for (size_t i = 0; i < cand.size(); ++i) {
          cumulative += cand[i].value;
          if (cumulative >= p.top_p) {
            cand.resize(i + 1);
            break;
          }
        }
      }
      float mass = 0.0f;
      for (const Cand& x : cand) mass += x.value;
      result.token = draw(cand, rng_next_f32(rng) * mass);
    } else {
      // Probabilities under the global temperature softmax.
      // Same operations as the single-rank path: v / T, minus the max of v / T.
      float mx = kNegInf;
      for (float v : local) mx = std::max(mx, v / p.temperature);
      mx = allreduce_scalar(c, mx, ReduceOp::kMax);
      float s = 0.0f;
      for (float& v : local) s += v = std::exp(v / p.temperature - mx);
      const float z = allreduce_scalar(c, s, ReduceOp::kSum);
      for (float& v : local) v /= z;
      const float coin = rng_next_f32(rng);
      if (!use_top_p) {
        result.token = sharded_multinomial(c, local, offset, coin);
      } else {
        // Candidates: llama2.c's cut-off, or the smallest threshold whose global mass
        // reaches top_p (bisection; each probe is one all-reduce of a float).
        float tau;
        if (llama2c) {
          tau = (1.0f - p.top_p) / static_cast<float>(vocab_size - 1);
        } else {
          float lo = 0.0f, hi = 1.0f;
          for (int it = 0; it < 40; ++it) {
            const float mid = 0.5f * (lo + hi);
            float m = 0.0f;
            for (float v : local)
              if (v >= mid) m += v;
            if (allreduce_scalar(c, m, ReduceOp::kSum) >= p.top_p) lo = mid; else hi = mid;
          }
          tau = lo;
        }
        std::vector<Cand> mine;
        for (size_t i = 0; i < local.size(); ++i)
          if (local[i] >= tau) mine.push_back({local[i], static_cast<int32_t>(offset + static_cast<int64_t>(i))});
        std::vector<Cand> cand = allgather_candidates(c, mine);  // global id order
        float cumulative = 0.0f;
        size_t last = cand.size() - 1;
        if (llama2c) {
          std::stable_sort(cand.begin(), cand.end(), [](const Cand& a, const Cand& b) { return a.value > b.value; });
          for (size_t i = 0; i < cand.size(); ++i) {
            cumulative += cand[i].value;
            if (cumulative > p.top_p) {
              last = i;
              break;
            }
          }
          cand.resize(last + 1);
          result.token = draw(cand, coin * cumulative);
        } else {
          std::sort(cand.begin(), cand.end(), by_value_then_id);
          for (size_t i = 0; i < cand.size(); ++i) {
            cumulative += cand[i].value;
            if (cumulative >= p.top_p) {
              last = i;
              break;
            }
          }
          cand.resize(last + 1);
          float mass = 0.0f;
          for (const Cand& x : cand) mass += x.value;
          result.token = draw(cand, coin * mass);
        }
      }
    }
  }

  if (p.n_logprobs >= 0) {
    float lp = 0.0f;
    const int64_t i = result.token - offset;
    if (i >= 0 && i < static_cast<int64_t>(raw.size())) lp = raw[static_cast<size_t>(i)] - log_z;
    result.logprob = allreduce_scalar(c, lp, ReduceOp::kSum);
    for (const Cand& x : top_logprobs) result.top.push_back({x.id, x.value - log_z});
  }
  return result;
}

}  // namespace tessera
