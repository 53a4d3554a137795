#include "coordinator/generator.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "coordinator/cp_steps.h"

namespace tessera {

namespace {
using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

double GenerateStats::prefill_tokens_per_second() const {
  return prefill_seconds > 0 ? static_cast<double>(prompt_tokens) / prefill_seconds : 0;
}
double GenerateStats::decode_tokens_per_second() const {
  return decode_seconds > 0 && generated_tokens > 1 ? static_cast<double>(generated_tokens - 1) / decode_seconds : 0;
}

int32_t prefill_sequence(StepRunner& runner, KvBlockAllocator& allocator, SequenceStep& seq,
                         std::span<const int32_t> prompt, int64_t chunk, bool want_output, double* forward_seconds,
                         const std::function<void(int64_t, int64_t)>& progress) {
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  const int64_t block_size = runner.kv_block_size();
  const int cp = runner.cp_size();
  chunk = cp_prefill_chunk(chunk, cp);
  StepPlan plan;
  plan.sequences.resize(1);
  int32_t next = -1;
  for (int64_t p = 0; p < prompt_len; p += chunk) {
    const int64_t n = std::min(chunk, prompt_len - p);
    seq.tokens.assign(prompt.begin() + p, prompt.begin() + p + n);
    seq.pos0 = p;
    seq.n_outputs = (p + n == prompt_len && want_output) ? 1 : 0;
    TESSERA_REQUIRE(step_kv_ensure(allocator, seq, cp, block_size), ErrorKind::kResource, "KV cache full: ",
                    p + n, " positions need more than ", allocator.free_blocks(), " free blocks");
    plan.sequences[0] = seq;
    StepResult r = runner.run_step(plan);
    step_kv_advance(seq, cp);
    if (progress) progress(p + n, prompt_len);
    *forward_seconds += r.forward_seconds;
    seq.rng_state = r.outputs.at(0).rng_state;
    if (seq.n_outputs == 1) next = r.outputs[0].samples.at(0).token;
  }
  return next;
}

Generator::Generator(StepRunner& runner) : runner_(runner), allocator_(runner.kv_blocks()) {}

Generator::Generator(Worker& worker)
    : owned_runner_(std::make_unique<LocalStepRunner>(worker)),
      runner_(*owned_runner_),
      allocator_(runner_.kv_blocks()) {}

GenerateStats Generator::generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const std::function<bool(int32_t)>& on_token) {
  TESSERA_REQUIRE(!prompt.empty(), ErrorKind::kInvalidInput, "the prompt is empty (no tokens, not even BOS)");
  TESSERA_REQUIRE(options.max_new_tokens >= 0, ErrorKind::kInvalidInput, "max new tokens must be >= 0");
  TESSERA_REQUIRE(options.prefill_chunk >= 1, ErrorKind::kInvalidInput, "prefill chunk must be >= 1");
  const int64_t block_size = runner_.kv_block_size();
  // Under CP every rank's pool holds about 1/C of the sequence (coordinator/cp_steps.h).
  const int64_t context = std::min(runner_.config().max_seq_len, allocator_.capacity() * block_size * runner_.cp_size());
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  TESSERA_REQUIRE(prompt_len <= context, ErrorKind::kInvalidInput, "the prompt has ", prompt_len,
                  " tokens, more than the context of ", context);
  const int64_t max_new = std::min(options.max_new_tokens, context - prompt_len);

  GenerateStats stats;
  stats.prompt_tokens = prompt_len;
  SequenceStep seq;
  seq.seq_id = next_seq_id_++;
  seq.sampling = options.sampling;
  seq.rng_state = options.seed != 0 ? options.seed : 0x9E3779B97F4A7C15ull;
  if (runner_.config().fixed_state) seq.state_slot = 0;  // one sequence at a time here
  StepPlan plan;
  plan.sequences.resize(1);

  BlockTableGuard release(allocator_, seq.block_table);

  const auto t_start = Clock::now();
  auto t_first = t_start;
  int32_t next = prefill_sequence(runner_, allocator_, seq, prompt, options.prefill_chunk, max_new > 0,
                                  &stats.forward_seconds, options.on_prefill_progress);
  t_first = Clock::now();
  stats.prefill_seconds = seconds(t_start, t_first);

  int64_t pos = prompt_len;
  while (next >= 0) {
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), next) != options.stop_tokens.end()) {
      stats.stopped_by_token = true;
      break;
    }
    ++stats.generated_tokens;
    if (!on_token(next) || stats.generated_tokens >= max_new) break;
    seq.tokens.assign(1, next);
    seq.pos0 = pos;
    seq.n_outputs = 1;
    TESSERA_REQUIRE(step_kv_ensure(allocator_, seq, runner_.cp_size(), block_size), ErrorKind::kResource,
                    "KV cache full at position ", pos);
    plan.sequences[0] = seq;
    StepResult r = runner_.run_step(plan);
    step_kv_advance(seq, runner_.cp_size());
    stats.forward_seconds += r.forward_seconds;
    seq.rng_state = r.outputs[0].rng_state;
    next = r.outputs[0].samples[0].token;
    ++pos;
  }
  stats.decode_seconds = seconds(t_first, Clock::now());
  return stats;
}

std::vector<float> Generator::score(std::span<const int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  TESSERA_REQUIRE(n > 0, ErrorKind::kInvalidInput, "nothing to score");
  SequenceStep seq;
  seq.seq_id = next_seq_id_++;
  seq.tokens.assign(tokens.begin(), tokens.end());
  seq.n_outputs = static_cast<int32_t>(n);
  seq.return_logits = true;
  if (runner_.config().fixed_state) seq.state_slot = 0;
  TESSERA_REQUIRE(step_kv_ensure(allocator_, seq, runner_.cp_size(), runner_.kv_block_size()), ErrorKind::kResource,
                  "KV cache too small to score ", n, " tokens");
  StepPlan plan;
  plan.sequences.push_back(seq);
  StepResult r = runner_.run_step(plan);
  allocator_.release(plan.sequences[0].block_table);
  return std::move(r.outputs[0].logits);
}

}  // namespace tessera
