// What the coordinator drives: something that runs a step plan and returns the last
// pipeline stage's result. In one process it is the local Worker; under mpirun it is
// every rank's worker behind the Cap'n Proto control plane (coordinator/rpc_step_runner.h).
#pragma once

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/moe_load.h"
#include "worker/step.h"
#include "worker/worker.h"

namespace tessera {

// One rank's step time, cumulative over the steps run so far (for /metrics).
struct RankStepTime {
  int rank = 0;
  double compute_seconds = 0;     // its model forward + sampling, collectives included
  double collective_seconds = 0;  // of which data-plane collectives, where measured
  int64_t steps = 0;
};

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  virtual StepResult run_step(const StepPlan& plan) = 0;
  // Sends the step and returns at once; calling the returned function waits for its
  // result. Several submitted steps are in flight together (pipeline parallelism:
  // stage s works on one micro-batch while stage s + 1 works on the previous one).
  // Default: runs the step now.
  virtual std::function<StepResult()> submit(const StepPlan& plan) {
    auto result = std::make_shared<StepResult>(run_step(plan));
    return [result] { return std::move(*result); };
  }
  virtual const ModelConfig& config() const = 0;
  virtual int64_t kv_blocks() const = 0;      // blocks in every worker's pool
  virtual int64_t kv_block_size() const = 0;  // positions per block
  // How many submitted steps keep every rank busy: the pipeline's stage count.
  virtual int pipeline_depth() const { return 1; }
  // Every rank's cumulative step time; call from the thread that runs steps.
  virtual std::vector<RankStepTime> rank_step_times() const { return {}; }
  // Fixed-state models: the per-sequence state slots every worker holds (0 otherwise).
  virtual int64_t state_slots() const { return config().fixed_state ? kDefaultStateSlots : 0; }
  // MoE models: (token, expert) pairs routed so far, [layer][expert] over the whole
  // model (every rank's share summed); empty for dense models. Call between steps.
  virtual std::vector<std::vector<int64_t>> moe_expert_load() { return {}; }
  // Ranks of the context-parallel ring: above 1, steps carry every rank's KV length and
  // block tables cover the longest shard (coordinator/cp_steps.h).
  virtual int cp_size() const { return 1; }
};

// The whole model in this process.
class LocalStepRunner final : public StepRunner {
 public:
  explicit LocalStepRunner(Worker& worker) : worker_(worker) {}
  StepResult run_step(const StepPlan& plan) override {
    StepResult r = worker_.run_step(plan);
    time_.compute_seconds += r.forward_seconds + r.sample_seconds;
    ++time_.steps;
    return r;
  }
  std::vector<RankStepTime> rank_step_times() const override { return {time_}; }
  const ModelConfig& config() const override { return worker_.config(); }
  int64_t kv_blocks() const override { return worker_.kv_shape().n_blocks; }
  int64_t kv_block_size() const override { return worker_.kv_shape().block_size; }
  int64_t state_slots() const override { return worker_.state_slots(); }
  std::vector<std::vector<int64_t>> moe_expert_load() override {
    std::vector<std::vector<int64_t>> out;
    moe_load_merge(out, moe_load_of(worker_.model()));
    return out;
  }
  int cp_size() const override { return worker_.cp_size(); }

 private:
  Worker& worker_;
  RankStepTime time_;
};

}  // namespace tessera
