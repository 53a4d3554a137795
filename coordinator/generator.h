// Generation of one sequence through the step plan: chunked prefill, then one decode
// step per token. This is the single-sequence driver `tessera generate` uses; the
// serving scheduler batches many sequences through the same Worker::run_step.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "coordinator/kv_block_allocator.h"
#include "worker/sampling.h"
#include "coordinator/step_runner.h"

namespace tessera {

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplingParams sampling;
  uint64_t seed = 0;            // initial xorshift state (0 is remapped: xorshift needs != 0)
  int64_t prefill_chunk = 512;  // prompt tokens per prefill step (bounds activation memory)
  std::vector<int32_t> stop_tokens;  // generation ends when one of these is sampled (not emitted)
  // Called after every prefill chunk with (prompt tokens done, prompt tokens); unset: quiet.
  std::function<void(int64_t, int64_t)> on_prefill_progress;
};

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;   // wall time until the first token was sampled
  double decode_seconds = 0;    // wall time of the remaining steps
  double forward_seconds = 0;   // of which in the model forward
  bool stopped_by_token = false;

  double prefill_tokens_per_second() const;
  double decode_tokens_per_second() const;  // tokens after the first / decode time
};

// Runs `prompt` through the runner for `seq` in chunks of at most `chunk` tokens, growing
// its block table from `allocator`; only the last chunk asks for an output when
// `want_output`. Returns the token sampled after the prompt (-1 without output) and
// leaves seq.rng_state advanced. Adds the workers' forward time to *forward_seconds.
// Under context parallelism (runner.cp_size() > 1) the chunk is rounded to a multiple
// of 2C and seq.cp_kv_lens tracks every CP rank's shard (coordinator/cp_steps.h).
// `progress`, when set, is called after every chunk with (tokens done, prompt tokens).
int32_t prefill_sequence(StepRunner& runner, KvBlockAllocator& allocator, SequenceStep& seq,
                         std::span<const int32_t> prompt, int64_t chunk, bool want_output, double* forward_seconds,
                         const std::function<void(int64_t, int64_t)>& progress = {});

class Generator {
 public:
  explicit Generator(StepRunner& runner);  // `runner` must outlive the generator
  explicit Generator(Worker& worker);      // the local worker, through a LocalStepRunner

  // Runs prompt (must be non-empty) through the model and samples up to max_new_tokens;
  // on_token(id) is called for every sampled token as soon as it exists (return false
  // to stop early). The prompt plus generation must fit the KV cache.
  GenerateStats generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                         const std::function<bool(int32_t)>& on_token);

  // Logits of every position of `tokens` ([n][vocab]), for tests and scoring.
  std::vector<float> score(std::span<const int32_t> tokens);

 private:
  std::unique_ptr<StepRunner> owned_runner_;  // set by the Worker& constructor
  StepRunner& runner_;
  KvBlockAllocator allocator_;
  uint64_t next_seq_id_ = 1;
};

}  // namespace tessera
