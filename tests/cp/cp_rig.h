// One rank's part of a context-parallel test job: the topology of a grid, its group
// communicators and this rank's Worker, driven in lockstep on every rank (each rank runs
// the same coordinator code, so every rank builds the same step plans: what the control
// plane would send them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collectives/group_communicators.h"
#include "coordinator/step_runner.h"
#include "collectives/topology.h"
#include "model/cp_attention.h"
#include "worker/worker.h"

namespace tessera::test {

struct CpRig {
  CpRig(const ParallelConfig& grid, const std::string& model, int64_t max_kv_tokens);

  Topology topology;
  GroupCommunicators comms;
  std::unique_ptr<Worker> worker;

  // This rank's CP attention counters (the model is a LlamaModel).
  const CpAttentionStats& cp_stats() const;
  // One int64 from every rank of the world, in world-rank order.
  std::vector<int64_t> gather(int64_t value) const;
};

// The coordinator's view in a lockstep job: runs the step on this rank's worker, then
// every rank gets the result of the last stage (pp - 1, cp 0, tp 0) by broadcast, as
// the control plane would hand it to the coordinator (samples, RNG state, logits).
class LockstepRunner final : public StepRunner {
 public:
  explicit LockstepRunner(CpRig& rig) : rig_(rig) {}
  StepResult run_step(const StepPlan& plan) override;
  const ModelConfig& config() const override { return rig_.worker->config(); }
  int64_t kv_blocks() const override { return rig_.worker->kv_shape().n_blocks; }
  int64_t kv_block_size() const override { return rig_.worker->kv_shape().block_size; }
  int cp_size() const override { return rig_.worker->cp_size(); }

 private:
  CpRig& rig_;
};

// A copy of tests/data/hf_tiny_llama (transformers' random tiny Llama: 3 layers, dim 64,
// 8 query / 4 KV heads of 8, vocab 320) whose config allows 32K positions (RoPE has no
// trained length; only max_position_embeddings, 256, stops long prompts). Per process.
std::string long_context_tiny_llama();

// Peak resident set (VmHWM) and current resident set (VmRSS) of this process, bytes.
int64_t peak_rss_bytes();
int64_t rss_bytes();

}  // namespace tessera::test
