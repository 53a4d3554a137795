#include "coordinator/speculative_generator.h"

#include "coordinator/generator.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "worker/verify.h"

namespace tessera {

namespace {
using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
constexpr int64_t kDraftChunk = 512;  // prompt tokens per draft prefill step
}  // namespace

int32_t draw_from(std::span<const float> probs, float coin) {
  double cdf = 0;
  int32_t last = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0) continue;
    cdf += probs[i];
    last = static_cast<int32_t>(i);
    if (coin < cdf) return last;
  }
  return last;
}

// ---- ModelDraft ----

ModelDraft::ModelDraft(StepRunner& runner, std::string name)
    : runner_(runner), name_(std::move(name)), allocator_(runner.kv_blocks()) {
  TESSERA_REQUIRE(!runner.config().fixed_state, ErrorKind::kUnsupported, name_, ": a ",
                  runner.config().architecture, " (fixed-state) model cannot be a draft yet");
  seq_.seq_id = next_seq_id_++;
}

int64_t ModelDraft::context() const {
  return std::min(runner_.config().max_seq_len, allocator_.capacity() * runner_.kv_block_size());
}

void ModelDraft::reset() {
  allocator_.release(seq_.block_table);
  fed_.clear();
  seq_ = SequenceStep{};
  seq_.seq_id = next_seq_id_++;
}

SequenceOutput ModelDraft::feed(std::span<const int32_t> tokens, bool want_logits) {
  SequenceOutput last;
  for (size_t p = 0; p < tokens.size(); p += kDraftChunk) {
    const size_t n = std::min<size_t>(kDraftChunk, tokens.size() - p);
    const bool final_chunk = p + n == tokens.size();
    seq_.tokens.assign(tokens.begin() + p, tokens.begin() + p + n);
    seq_.pos0 = static_cast<int64_t>(fed_.size());
    seq_.n_outputs = final_chunk ? 1 : 0;
    seq_.return_logits = final_chunk && want_logits;
    seq_.sampling = SamplingParams{};  // greedy on the worker; the draft samples here from q
    TESSERA_REQUIRE(allocator_.ensure(seq_.block_table, seq_.pos0 + static_cast<int64_t>(n), runner_.kv_block_size()),
                    ErrorKind::kResource, "draft KV cache full at position ", seq_.pos0 + static_cast<int64_t>(n));
    StepPlan plan;
    plan.sequences.push_back(seq_);
    StepResult r = runner_.run_step(plan);
    fed_.insert(fed_.end(), seq_.tokens.begin(), seq_.tokens.end());
    if (final_chunk) last = std::move(r.outputs.at(0));
  }
  return last;
}

void ModelDraft::propose(std::span<const int32_t> ctx, int32_t k, const SamplingParams& sampling, uint64_t& rng,
                         std::vector<int32_t>& tokens, std::vector<float>& probs) {
  const auto t0 = Clock::now();
  tokens.clear();
  probs.clear();
  TESSERA_REQUIRE(!ctx.empty(), ErrorKind::kInternal, "draft: empty context");
  // Rollback: keep the positions whose tokens still match the committed context (at
  // least the last context token is fed again, for its logits).
  size_t keep = 0;
  while (keep < fed_.size() && keep + 1 < ctx.size() && fed_[keep] == ctx[keep]) ++keep;
  fed_.resize(keep);
  k = static_cast<int32_t>(std::min<int64_t>(k, context() - static_cast<int64_t>(ctx.size()) + 1));
  if (k <= 0) return;
  const bool greedy = sampling.temperature == 0.0f;
  SequenceOutput out = feed(ctx.subspan(keep), !greedy);
  const int64_t vocab = runner_.config().vocab_size;
  for (int32_t j = 0; j < k; ++j) {
    int32_t x;
    if (greedy) {
      x = out.samples.at(0).token;
    } else {
      std::vector<float> q = sampling_distribution(std::span<const float>(out.logits).first(static_cast<size_t>(vocab)),
                                                   sampling);
      x = draw_from(q, rng_next_f32(rng));
      probs.insert(probs.end(), q.begin(), q.end());
    }
    tokens.push_back(x);
    if (j + 1 < k) out = feed(std::span<const int32_t>(&x, 1), !greedy);
  }
  seconds += std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- NgramDraft ----

void NgramDraft::propose(std::span<const int32_t> ctx, int32_t k, const SamplingParams&, uint64_t&,
                         std::vector<int32_t>& tokens, std::vector<float>& probs) {
  tokens.clear();
  probs.clear();
  const int64_t len = static_cast<int64_t>(ctx.size());
  for (int64_t n = std::min<int64_t>(max_n_, len - 1); n >= min_n_ && tokens.empty(); --n) {
    // The latest start s < len - n with ctx[s .. s + n) == the last n tokens.
    for (int64_t s = len - n - 1; s >= 0; --s) {
      if (!std::equal(ctx.begin() + s, ctx.begin() + s + n, ctx.end() - n)) continue;
      for (int64_t i = s + n; i < len && static_cast<int32_t>(tokens.size()) < k; ++i) tokens.push_back(ctx[i]);
      break;
    }
  }
}

// ---- make_draft ----

namespace {

class OwnedModelDraft final : public Draft {
 public:
  OwnedModelDraft(const std::string& path, const WorkerOptions& options, std::string name)
      : worker_(path, options), runner_(worker_), draft_(runner_, std::move(name)) {}
  void propose(std::span<const int32_t> ctx, int32_t k, const SamplingParams& sampling, uint64_t& rng,
               std::vector<int32_t>& tokens, std::vector<float>& probs) override {
    draft_.propose(ctx, k, sampling, rng, tokens, probs);
  }
  void reset() override { draft_.reset(); }
  std::string name() const override { return draft_.name(); }
  int64_t vocab() const { return worker_.config().vocab_size; }

 private:
  Worker worker_;
  LocalStepRunner runner_;
  ModelDraft draft_;
};

}  // namespace

std::unique_ptr<Draft> make_draft(const std::string& spec, const std::string& target_model,
                                  const WorkerOptions& options, int64_t target_vocab) {
  TESSERA_REQUIRE(!spec.empty(), ErrorKind::kInvalidInput, "--draft needs ngram, int8 or a checkpoint path");
  if (spec == "ngram") return std::make_unique<NgramDraft>();
  WorkerOptions o = options;
  o.int8_copy = spec == "int8";
  auto d = std::make_unique<OwnedModelDraft>(spec == "int8" ? target_model : spec, o,
                                             spec == "int8" ? std::string("int8") : spec);
  TESSERA_REQUIRE(d->vocab() == target_vocab, ErrorKind::kInvalidInput, "the draft ", spec, " has a vocabulary of ",
                  d->vocab(), " tokens, the target ", target_vocab, ": speculative decoding needs the same one");
  return d;
}

// ---- SpeculativeGenerator ----

SpeculativeGenerator::SpeculativeGenerator(StepRunner& target, Draft& draft, SpeculativeOptions options)
    : target_(target), draft_(draft), options_(options), allocator_(target.kv_blocks()),
      k_(options.k, options.k_min, options.k_max) {
  TESSERA_REQUIRE(options.k >= 1, ErrorKind::kInvalidInput, "--draft-k must be >= 1, got ", options.k);
  TESSERA_REQUIRE(options.k_min >= 1 && options.k_min <= options.k_max, ErrorKind::kInvalidInput,
                  "adaptive K bounds must satisfy 1 <= min <= max");
  // A fixed-state target uses slot 0 and keeps the state to roll back to in slot 1.
  TESSERA_REQUIRE(!target.config().fixed_state || target.state_slots() >= 2, ErrorKind::kInvalidInput,
                  "speculative decoding of ", target.config().architecture, " needs 2 state slots, the workers hold ",
                  target.state_slots());
  // Rolling back rejected draft tokens would have to undo their CP placement too.
  TESSERA_REQUIRE(target.cp_size() == 1, ErrorKind::kUnsupported,
                  "speculative decoding does not run over a context-parallel ring (cp = ", target.cp_size(), ") yet");
}

GenerateStats SpeculativeGenerator::generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                             const std::function<bool(int32_t)>& on_token) {
  TESSERA_REQUIRE(!prompt.empty(), ErrorKind::kInvalidInput, "the prompt is empty (no tokens, not even BOS)");
  TESSERA_REQUIRE(options.max_new_tokens >= 0, ErrorKind::kInvalidInput, "max new tokens must be >= 0");
  TESSERA_REQUIRE(options.prefill_chunk >= 1, ErrorKind::kInvalidInput, "prefill chunk must be >= 1");
  const int64_t block_size = target_.kv_block_size();
  const int64_t context = std::min(target_.config().max_seq_len, allocator_.capacity() * block_size);
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  TESSERA_REQUIRE(prompt_len <= context, ErrorKind::kInvalidInput, "the prompt has ", prompt_len,
                  " tokens, more than the context of ", context);
  const int64_t max_new = std::min(options.max_new_tokens, context - prompt_len);

  stats_ = SpeculativeStats{};
  draft_.reset();
  draft_.seconds = 0;
  if (!options_.adaptive) k_ = AdaptiveK(options_.k, options_.k_min, options_.k_max);
  GenerateStats stats;
  stats.prompt_tokens = prompt_len;
  SequenceStep seq;
  seq.seq_id = next_seq_id_++;
  seq.sampling = options.sampling;
  seq.rng_state = options.seed != 0 ? options.seed : 0x9E3779B97F4A7C15ull;
  // Fixed-state targets (RecurrentGemma): the sequence lives in slot 0; each verify step
  // first saves it into slot 1 (the state before ctx.back()), and a rejection restores it
  // and replays the accepted tokens (docs/RECURRENT_GEMMA.md).
  const bool fixed_state = target_.config().fixed_state;
  constexpr int32_t kSlot = 0, kSaved = 1;
  if (fixed_state) seq.state_slot = kSlot;
  // The draft's RNG: its own stream, derived from the seed.
  uint64_t draft_rng = (seq.rng_state ^ 0xD1B54A32D192ED03ull) | 1;
  StepPlan plan;
  plan.sequences.resize(1);
  BlockTableGuard release(allocator_, seq.block_table);

  const auto t_start = Clock::now();
  std::vector<int32_t> ctx(prompt.begin(), prompt.end());
  const int32_t first =
      prefill_sequence(target_, allocator_, seq, prompt, options.prefill_chunk, max_new > 0, &stats.forward_seconds);
  const auto t_first = Clock::now();
  stats.prefill_seconds = seconds(t_start, t_first);

  // Emits one token; false when generation is over.
  bool done = first < 0;
  auto emit = [&](int32_t id) {
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), id) != options.stop_tokens.end()) {
      stats.stopped_by_token = true;
      return false;
    }
    ++stats.generated_tokens;
    ctx.push_back(id);
    return on_token(id) && stats.generated_tokens < max_new;
  };
  if (!done) done = !emit(first);

  std::vector<int32_t> draft_tokens;
  std::vector<float> draft_probs;
  while (!done) {
    const int64_t len = static_cast<int64_t>(ctx.size());
    // The verify step writes positions len - 1 .. len - 1 + k: stay in the context, and
    // draft no more than can still be emitted.
    const int64_t room = std::min(context - len, max_new - stats.generated_tokens - 1);
    const int32_t k = static_cast<int32_t>(std::max<int64_t>(0, std::min<int64_t>(k_.k(), room)));
    draft_tokens.clear();
    draft_probs.clear();
    if (k > 0) {
      const auto t0 = Clock::now();
      draft_.propose(ctx, k, options.sampling, draft_rng, draft_tokens, draft_probs);
      stats_.draft_seconds += seconds(t0, Clock::now());
    }
    const int64_t kk = static_cast<int64_t>(draft_tokens.size());
    seq.tokens.assign(1, ctx.back());
    seq.tokens.insert(seq.tokens.end(), draft_tokens.begin(), draft_tokens.end());
    seq.pos0 = len - 1;
    seq.n_outputs = static_cast<int32_t>(kk + 1);
    seq.draft_tokens = draft_tokens;
    seq.draft_probs = draft_probs;
    TESSERA_REQUIRE(allocator_.ensure(seq.block_table, len + kk, block_size), ErrorKind::kResource,
                    "KV cache full at position ", len + kk - 1);
    plan.sequences[0] = seq;
    plan.state_copies.clear();
    if (fixed_state) plan.state_copies.push_back({kSlot, kSaved});
    const auto t0 = Clock::now();
    StepResult r = target_.run_step(plan);
    stats_.target_seconds += seconds(t0, Clock::now());
    stats.forward_seconds += r.forward_seconds;
    const SequenceOutput& out = r.outputs.at(0);
    seq.rng_state = out.rng_state;
    ++stats_.verify_steps;
    stats_.drafted += kk;
    if (kk > 0) {
      stats_.accepted += out.accepted;
      if (options_.adaptive) k_.update(kk, out.accepted);  // coordinator/adaptive_k.h
    }
    // Rejected tokens went into a fixed-state model's state: restore the saved state and
    // replay ctx.back() and the accepted tokens (no outputs, the RNG does not move).
    if (fixed_state && kk > 0 && out.accepted < kk) {
      StepPlan replay;
      replay.state_copies.push_back({kSaved, kSlot});
      SequenceStep rs = seq;
      rs.tokens.assign(1, ctx.back());
      rs.tokens.insert(rs.tokens.end(), draft_tokens.begin(), draft_tokens.begin() + out.accepted);
      rs.n_outputs = 0;
      rs.return_logits = false;
      rs.draft_tokens.clear();
      rs.draft_probs.clear();
      replay.sequences.push_back(std::move(rs));
      const auto t1 = Clock::now();
      const StepResult rr = target_.run_step(replay);
      stats_.target_seconds += seconds(t1, Clock::now());
      stats.forward_seconds += rr.forward_seconds;
    }
    // Emit the accepted draft tokens and the extra one; rejected positions are simply
    // beyond the new length (their K/V is overwritten by the next step).
    for (const SampleResult& s : out.samples) {
      ++stats_.emitted;
      if (!emit(s.token)) {
        done = true;
        break;
      }
    }
  }
  stats.decode_seconds = seconds(t_first, Clock::now());
  return stats;
}

}  // namespace tessera
