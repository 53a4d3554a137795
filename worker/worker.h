// A worker: the weights of its shard, its KV cache, its kernel thread pool, and the
// forward step of its layers. In one process (no mpirun) one worker holds the whole
// model; under MPI every rank runs one (coordinator/ drives them through the step plan).
// Every rank of a step runs run_step with the same plan; only the last pipeline stage
// returns outputs (each of its TP ranks the same ones), the others an empty list.
#pragma once

#include <memory>
#include <string>

#include "kernels/thread_pool.h"
#include "model/kv_cache.h"
#include "model/loader.h"
#include "worker/step.h"
#include "worker/verify.h"

namespace tessera {

// State slots of a fixed-state model's worker (RecurrentGemma) unless set otherwise;
// remote workers (loaded over RPC) always use this many.
constexpr int64_t kDefaultStateSlots = 8;

struct WorkerOptions {
  int threads = 1;            // kernel threads
  int64_t kv_block_size = 16; // positions per KV block
  int64_t kv_blocks = 0;      // 0: enough for max_kv_tokens
  int64_t max_kv_tokens = 0;  // 0: the model's context length
  bool int8_copy = false;     // requantise the dense matrices to Q8_0 (speculative self-draft)
  // Speculative verify rule; kAcceptAll only for the tests that must catch a broken rule.
  AcceptanceRule acceptance = AcceptanceRule::kExact;
  int64_t state_slots = kDefaultStateSlots;  // fixed-state families (RecurrentGemma): sequences in flight
};

// Blocks of a worker's KV pool for sequences of up to max_tokens positions: under
// context parallelism (cp > 1) a rank holds about 1/C of them (model/cp_layout.h) plus
// one block of slack for a ragged last chunk. The coordinator sizes its allocator with
// the same function.
int64_t worker_kv_blocks(int64_t max_tokens, int64_t block_size, int cp = 1);

class Worker {
 public:
  // Loads this rank's shard of the checkpoint at model_path (throws tessera::Error
  // naming what is wrong). Default spec/comms: the whole model in this process.
  // The communicators must outlive the worker.
  Worker(const std::string& model_path, const WorkerOptions& options, const ShardSpec& spec = {},
         const ModelComms& comms = {});

  const ModelConfig& config() const { return model_->config; }
  const KvCacheShape& kv_shape() const { return cache_->shape(); }
  const ShardPlan& plan() const { return model_->plan; }
  const checkpoint::Checkpoint& checkpoint() const { return *model_->checkpoint; }
  uint64_t weight_bytes() const { return model_->weight_bytes; }
  uint64_t streamed_bytes() const { return model_->streamed_bytes; }
  const DecoderModel& model() const { return *model_->model; }  // e.g. MoE load statistics
  // Ranks of the context-parallel ring this worker is part of (1 without CP).
  int cp_size() const { return comms_.cp != nullptr ? comms_.cp->size() : 1; }

  StepResult run_step(const StepPlan& plan);
  // Fixed-state families: copy sequence state slot src into dst (save / restore).
  void copy_state(int32_t src, int32_t dst) { model_->model->copy_state(src, dst); }
  int64_t state_slots() const { return model_->model->state_slots(); }

 private:
  // Rows [row0, row0 + n_rows) of this step's logits over the whole vocabulary.
  std::vector<float> full_logits(int64_t row0, int64_t n_rows);

  ModelComms comms_;
  AcceptanceRule acceptance_ = AcceptanceRule::kExact;
  std::unique_ptr<kernels::ThreadPool> pool_;
  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<KvCache> cache_;
  std::vector<float> logits_;  // [sum n_outputs][vocabulary shard] of the current step
};

}  // namespace tessera
