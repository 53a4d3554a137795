// One MPI rank's worker behind the control plane: load_shard builds the Worker for this
// rank's coordinates (sharding/plan.h) with its TP and PP communicators; run_step runs
// on the RPC server's compute thread, which is the only thread that calls MPI after
// start-up (DESIGN.md, "Threads in a process").
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "collectives/group_communicators.h"
#include "collectives/topology.h"
#include "rpc/executor.h"
#include "worker/worker.h"

namespace tessera {

class RankExecutor final : public rpc::StepExecutor {
 public:
  // topology and comms must outlive the executor.
  RankExecutor(const Topology& topology, GroupCommunicators& comms, std::string host);

  void load_shard(const rpc::LoadShardRequest& request) override;
  StepResult run_step(const StepPlan& plan) override;
  void release(std::span<const uint64_t> seq_ids) override;
  rpc::WorkerStatsValue stats() override;

 private:
  const Topology& topology_;
  GroupCommunicators& comms_;
  std::string host_;
  std::unique_ptr<Worker> worker_;
  uint64_t steps_ = 0;
  double compute_seconds_ = 0;
};

}  // namespace tessera
