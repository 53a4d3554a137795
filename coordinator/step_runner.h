// What the coordinator drives: something that runs a step plan and returns the last
// pipeline stage's result. In one process it is the local Worker; under mpirun it is
// every rank's worker behind the Cap'n Proto control plane (coordinator/rpc_step_runner.h).
#pragma once

#include <functional>
#include <memory>
#include <utility>

#include "model/config.h"
#include "worker/step.h"
#include "worker/worker.h"

namespace tessera {

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
  // Ranks of the context-parallel ring: above 1, steps carry every rank's KV length and
  // block tables cover the longest shard (coordinator/cp_steps.h).
  virtual int cp_size() const { return 1; }
};

// The whole model in this process.
class LocalStepRunner final : public StepRunner {
 public:
  explicit LocalStepRunner(Worker& worker) : worker_(worker) {}
  StepResult run_step(const StepPlan& plan) override { return worker_.run_step(plan); }
  const ModelConfig& config() const override { return worker_.config(); }
  int64_t kv_blocks() const override { return worker_.kv_shape().n_blocks; }
  int64_t kv_block_size() const override { return worker_.kv_shape().block_size; }
  int cp_size() const override { return worker_.cp_size(); }

 private:
  Worker& worker_;
};

}  // namespace tessera
