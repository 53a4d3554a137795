#include "worker/verify.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/error.h"
#include "worker/sharded_sampling.h"

namespace tessera {

namespace {


// First index whose cumulative mass (index order) exceeds r; the last positive entry on
// rounding errors.
int32_t draw_index(std::span<const float> w, double r) {
  double cdf = 0;
  int32_t last = -1;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] <= 0) continue;
    cdf += w[i];
    last = static_cast<int32_t>(i);
    if (r < cdf) return last;
  }
  return last;
}

bool accept(double px, double qx, uint64_t& rng, AcceptanceRule rule) {
  const double r = rng_next_f32(rng);
  if (rule == AcceptanceRule::kAcceptAll) return true;  // p/q replaced by 1
  if (qx <= 0) return px > 0;  // cannot happen for a token drawn from q
  return r < px / qx;          // probability min(1, p/q)
}

void check_args(int64_t rows, std::span<const int32_t> draft, std::span<const float> q, int64_t vocab) {
  const int64_t k = static_cast<int64_t>(draft.size());
  TESSERA_REQUIRE(k >= 1 && rows == k + 1, ErrorKind::kInvalidInput, "verify: ", k, " draft tokens need ", k + 1,
                  " scored positions, got ", rows);
  TESSERA_REQUIRE(q.empty() || static_cast<int64_t>(q.size()) == k * vocab, ErrorKind::kInvalidInput,
                  "verify: the draft distribution has ", q.size(), " values, expected ", k, " x ", vocab);
  for (int32_t d : draft)
    TESSERA_REQUIRE(d >= 0 && d < vocab, ErrorKind::kInvalidInput, "verify: draft token ", d,
                    " is outside the vocabulary of ", vocab);
}

}  // namespace

bool verify_needs_full_rows(const SamplingParams& p) {
  if (p.temperature == 0.0f) return false;
  const bool top_p = p.top_p > 0.0f && p.top_p < 1.0f;
  const bool top_k = p.kind == SamplerKind::kStandard && p.top_k > 0;
  return top_p || top_k;
}

std::vector<float> sampling_distribution(std::span<const float> logits, const SamplingParams& p) {
  TESSERA_REQUIRE(p.temperature > 0, ErrorKind::kInternal, "sampling_distribution needs temperature > 0");
  const size_t n = logits.size();
  std::vector<float> out(n, 0.0f);
  auto softmax_all = [&] {
    float mx = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < n; ++i) mx = std::max(mx, logits[i] / p.temperature);
    float sum = 0;
    for (size_t i = 0; i < n; ++i) sum += out[i] = std::exp(logits[i] / p.temperature - mx);
    for (float& v : out) v /= sum;
  };
  const bool use_top_p = p.top_p > 0.0f && p.top_p < 1.0f;
  if (p.kind == SamplerKind::kLlama2c) {
    softmax_all();
    if (!use_top_p) return out;
    // run.c: candidates >= (1 - p) / (n - 1), sorted descending (stable), the prefix whose
    // cumulative mass first exceeds top_p, drawn with coin * that mass.
    const float cutoff = (1.0f - p.top_p) / static_cast<float>(n - 1);
    std::vector<int32_t> cand;
    for (size_t i = 0; i < n; ++i)
      if (out[i] >= cutoff) cand.push_back(static_cast<int32_t>(i));
    std::stable_sort(cand.begin(), cand.end(), [&](int32_t a, int32_t b) { return out[a] > out[b]; });
    float cumulative = 0;
    size_t last = cand.size() - 1;
    for (size_t i = 0; i < cand.size(); ++i) {
      cumulative += out[cand[i]];
      if (cumulative > p.top_p) {
        last = i;
        break;
      }
    }
    std::vector<float> kept(n, 0.0f);
    for (size_t i = 0; i <= last; ++i) kept[cand[i]] = out[cand[i]] / cumulative;
    return kept;
  }
  const bool use_top_k = p.top_k > 0 && static_cast<size_t>(p.top_k) < n;
  if (!use_top_k && !use_top_p) {
    softmax_all();
    return out;
  }
  // Standard: top-k by logit (lowest id first on ties), softmax over them, nucleus prefix.
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  size_t keep = n;
  if (use_top_k) {
    keep = static_cast<size_t>(p.top_k);
    std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(), by_logit);
  } else {
    std::sort(idx.begin(), idx.end(), by_logit);
  }
  idx.resize(keep);
  const float mx = logits[idx[0]];
  std::vector<float> prob(keep);
  float sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp((logits[idx[i]] - mx) / p.temperature);
  for (float& v : prob) v /= sum;
  if (use_top_p) {
    float cumulative = 0;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += prob[i];
      if (cumulative >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  float mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += prob[i];
  for (size_t i = 0; i < keep; ++i) out[idx[i]] = prob[i] / mass;
  return out;
}

VerifyOutcome verify_draft(std::span<const float> logits, int64_t vocab, std::span<const int32_t> draft,
                           std::span<const float> q, const SamplingParams& params, uint64_t& rng,
                           AcceptanceRule rule) {
  TESSERA_REQUIRE(vocab > 0 && static_cast<int64_t>(logits.size()) % vocab == 0, ErrorKind::kInternal,
                  "verify: logits are not whole rows");
  const int64_t rows = static_cast<int64_t>(logits.size()) / vocab;
  check_args(rows, draft, q, vocab);
  const int32_t k = static_cast<int32_t>(draft.size());
  VerifyOutcome out;
  auto row = [&](int32_t i) { return logits.subspan(static_cast<size_t>(i * vocab), static_cast<size_t>(vocab)); };
  auto finish = [&](int32_t accepted, int32_t extra) {
    out.accepted = accepted;
    out.extra_token = extra;
    for (int32_t i = 0; i < accepted; ++i) out.samples.push_back({draft[i], 0.0f, {}});
    out.samples.push_back({extra, 0.0f, {}});
    return out;
  };
  if (params.temperature == 0.0f) {
    for (int32_t i = 0; i < k; ++i) {
      const int32_t t = argmax(row(i));
      if (t != draft[i]) return finish(i, t);
    }
    return finish(k, argmax(row(k)));
  }
  for (int32_t i = 0; i < k; ++i) {
    std::vector<float> p = sampling_distribution(row(i), params);
    const int32_t x = draft[i];
    const float* qi = q.empty() ? nullptr : q.data() + static_cast<size_t>(i) * vocab;
    const double qx = qi != nullptr ? qi[x] : 1.0;
    if (accept(p[x], qx, rng, rule)) continue;
    // Rejected: sample from norm(max(0, p - q)).
    std::vector<float> residual(p);
    double mass = 0;
    for (int64_t j = 0; j < vocab; ++j) {
      const float qj = qi != nullptr ? qi[j] : (j == x ? 1.0f : 0.0f);
      residual[j] = std::max(0.0f, p[j] - qj);
      mass += residual[j];
    }
    const double coin = rng_next_f32(rng);
    if (mass <= 0) return finish(i, draw_index(p, coin));  // p == q up to rounding
    return finish(i, draw_index(residual, coin * mass));
  }
  std::vector<float> p = sampling_distribution(row(k), params);
  return finish(k, draw_index(p, rng_next_f32(rng)));
}

namespace {

// Multinomial over weights spread across the ranks (this rank: ids offset..), coin in
// [0, total mass): the rank whose prefix holds the coin walks its ids.
int32_t sharded_draw(Communicator& tp, std::span<const float> w, int64_t offset, double coin) {
  float mine = 0;
  for (float v : w) mine += std::max(v, 0.0f);
  std::vector<float> masses(static_cast<size_t>(tp.size()));
  tp.allgather(&mine, masses.data(), 1, CommType::kF32);
  double before = 0;
  int owner = -1;
  for (int r = 0; r < tp.size(); ++r) {
    if (masses[r] <= 0) continue;
    owner = r;  // the last rank with mass takes rounding errors
    if (coin < before + masses[r]) break;
    before += masses[r];
  }
  int32_t id = -1;
  if (tp.rank() == owner) {
    const int32_t local = draw_index(w, std::max(0.0, std::min(coin - before, static_cast<double>(masses[owner]))));
    id = local >= 0 ? static_cast<int32_t>(offset + local) : -1;
  }
  tp.allreduce(&id, 1, CommType::kI32, ReduceOp::kMax);
  return id;
}

float allreduce_f32(Communicator& c, float v, ReduceOp op) {
  c.allreduce(&v, 1, CommType::kF32, op);
  return v;
}

}  // namespace

VerifyOutcome verify_draft_sharded(std::span<float> local, int64_t cols, int64_t offset, int64_t vocab,
                                   std::span<const int32_t> draft, std::span<const float> q,
                                   const SamplingParams& params, uint64_t& rng, Communicator* tp,
                                   AcceptanceRule rule) {
  if (tp == nullptr || tp->size() == 1) return verify_draft(local, vocab, draft, q, params, rng, rule);
  TESSERA_REQUIRE(!verify_needs_full_rows(params), ErrorKind::kInternal,
                  "verify_draft_sharded: top-k / top-p need the whole rows");
  TESSERA_REQUIRE(cols > 0 && static_cast<int64_t>(local.size()) % cols == 0, ErrorKind::kInternal,
                  "verify: logits are not whole rows");
  const int64_t rows = static_cast<int64_t>(local.size()) / cols;
  check_args(rows, draft, q, vocab);
  Communicator& c = *tp;
  const int32_t k = static_cast<int32_t>(draft.size());
  VerifyOutcome out;
  auto row = [&](int32_t i) { return local.subspan(static_cast<size_t>(i * cols), static_cast<size_t>(cols)); };
  auto finish = [&](int32_t accepted, SampleResult extra) {
    out.accepted = accepted;
    out.extra_token = extra.token;
    for (int32_t i = 0; i < accepted; ++i) out.samples.push_back({draft[i], 0.0f, {}});
    out.samples.push_back(std::move(extra));
    return out;
  };
  if (params.temperature == 0.0f) {
    // Global argmax per position: one (value, id) pair per rank, exact.
    SamplingParams greedy = params;
    greedy.n_logprobs = -1;
    for (int32_t i = 0; i < k; ++i) {
      uint64_t unused = rng;
      SampleResult t = sample_token_sharded(row(i), offset, vocab, greedy, unused, tp);
      if (t.token != draft[i]) return finish(i, t);
    }
    uint64_t unused = rng;
    return finish(k, sample_token_sharded(row(k), offset, vocab, greedy, unused, tp));
  }
  // Temperature softmax over the shards (same operations as sample_token_sharded).
  auto to_probs = [&](std::span<float> v) {
    float mx = -std::numeric_limits<float>::infinity();
    for (float x : v) mx = std::max(mx, x / params.temperature);
    mx = allreduce_f32(c, mx, ReduceOp::kMax);
    float s = 0;
    for (float& x : v) s += x = std::exp(x / params.temperature - mx);
    const float z = allreduce_f32(c, s, ReduceOp::kSum);
    for (float& x : v) x /= z;
  };
  for (int32_t i = 0; i < k; ++i) {
    std::span<float> p = row(i);
    to_probs(p);
    const int32_t x = draft[i];
    const bool mine = x >= offset && x < offset + cols;
    const float px = allreduce_f32(c, mine ? p[static_cast<size_t>(x - offset)] : 0.0f, ReduceOp::kSum);
    const float* qi = q.empty() ? nullptr : q.data() + static_cast<size_t>(i) * vocab;
    const double qx = qi != nullptr ? qi[x] : 1.0;
    if (accept(px, qx, rng, rule)) continue;
    std::vector<float> residual(p.size());
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t id = offset + j;
      const float qj = qi != nullptr ? qi[id] : (id == x ? 1.0f : 0.0f);
      residual[static_cast<size_t>(j)] = std::max(0.0f, p[static_cast<size_t>(j)] - qj);
    }
    float mass_local = 0;
    for (float v : residual) mass_local += v;
    const float mass = allreduce_f32(c, mass_local, ReduceOp::kSum);
    const double coin = rng_next_f32(rng);
    if (mass <= 0) return finish(i, {sharded_draw(c, p, offset, coin), 0.0f, {}});
    return finish(i, {sharded_draw(c, residual, offset, coin * mass), 0.0f, {}});
  }
  std::span<float> p = row(k);
  to_probs(p);
  return finish(k, {sharded_draw(c, p, offset, rng_next_f32(rng)), 0.0f, {}});
}

void fill_verify_logprobs(std::span<const float> raw_rows, int64_t cols, int64_t offset, int32_t n_top,
                          std::vector<SampleResult>& samples, Communicator* tp) {
  const size_t n = samples.size();
  TESSERA_REQUIRE(static_cast<int64_t>(raw_rows.size()) >= static_cast<int64_t>(n) * cols, ErrorKind::kInternal,
                  "verify logprobs: ", raw_rows.size(), " logits for ", n, " rows of ", cols);
  // Per row: the max, the partition sum after subtracting it, and the token's logit
  // (from the rank that holds its id; 0 elsewhere), each reduced over the TP group.
  std::vector<float> mx(n, -std::numeric_limits<float>::infinity()), sum(n, 0.0f), own(n, 0.0f);
  for (size_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < cols; ++j) mx[i] = std::max(mx[i], raw_rows[i * static_cast<size_t>(cols) + j]);
  const bool sharded = tp != nullptr && tp->size() > 1;
  if (sharded) tp->allreduce(mx.data(), n, CommType::kF32, ReduceOp::kMax);
  for (size_t i = 0; i < n; ++i) {
    const float* row = raw_rows.data() + i * static_cast<size_t>(cols);
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += std::exp(static_cast<double>(row[j] - mx[i]));
    sum[i] = static_cast<float>(s);
    const int64_t t = samples[i].token - offset;
    if (t >= 0 && t < cols) own[i] = row[t] - mx[i];
  }
  if (sharded) {
    tp->allreduce(sum.data(), n, CommType::kF32, ReduceOp::kSum);
    tp->allreduce(own.data(), n, CommType::kF32, ReduceOp::kSum);
  }
  for (size_t i = 0; i < n; ++i) {
    samples[i].logprob = own[i] - std::log(sum[i]);
    if (n_top > 0) {
      const std::span<const float> row = raw_rows.subspan(i * static_cast<size_t>(cols), static_cast<size_t>(cols));
      samples[i].top = top_logprobs_sharded(row, offset, static_cast<size_t>(n_top), mx[i] + std::log(sum[i]), tp);
    }
  }
}

}  // namespace tessera
