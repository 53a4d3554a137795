// The coordinator's view of a distributed job: every step plan goes to every rank over
// the control plane; the result is the last pipeline stage's (its TP ranks agree).
#pragma once

#include "collectives/topology.h"
#include "coordinator/step_runner.h"
#include "rpc/coordinator_client.h"

namespace tessera {

struct StepTimeSplit {  // cumulative over steps, seconds
  double wall = 0;
  double compute = 0;     // slowest rank's step compute (includes its collectives)
  double collectives = 0; // slowest rank's data-plane collectives, where measured
  double rpc = 0;         // control-plane round trip beyond the slowest rank's work
  int64_t steps = 0;
};

class RpcStepRunner final : public StepRunner {
 public:
  // client and topology must outlive the runner; config is the model's (read by the
  // coordinator from the checkpoint header).
  RpcStepRunner(rpc::CoordinatorClient& client, const Topology& topology, ModelConfig config, int64_t kv_blocks,
                int64_t kv_block_size);

  StepResult run_step(const StepPlan& plan) override;
  std::function<StepResult()> submit(const StepPlan& plan) override;
  const ModelConfig& config() const override { return config_; }
  int64_t kv_blocks() const override { return kv_blocks_; }
  int64_t kv_block_size() const override { return kv_block_size_; }
  int cp_size() const override { return topology_.cp_size(); }
  const StepTimeSplit& time_split() const { return split_; }
  std::vector<RankStepTime> rank_step_times() const override { return ranks_; }
  int pipeline_depth() const override { return topology_.pp_size(); }
  std::vector<std::vector<int64_t>> moe_expert_load() override;  // one stats call to every worker

 private:
  StepResult collect(std::vector<rpc::WorkerStep> steps, size_t n_sequences, double wall);

  rpc::CoordinatorClient& client_;
  const Topology& topology_;
  ModelConfig config_;
  int64_t kv_blocks_, kv_block_size_;
  StepTimeSplit split_;
  std::vector<RankStepTime> ranks_;  // indexed by world rank
};

}  // namespace tessera
