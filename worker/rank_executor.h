// One MPI rank's worker behind the control plane: load_shard builds the Worker for this
// rank's coordinates (sharding/plan.h) with its TP and PP communicators; run_step runs
// on the RPC server's compute thread, which is the only thread that calls MPI after
// start-up (DESIGN.md, "Threads in a process").
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "collectives/group_communicators.h"
#include "collectives/timed_communicator.h"
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
  double take_collective_seconds() override;

 private:
  const Topology& topology_;
  GroupCommunicators& comms_;
  std::string host_;
  // The model's TP and PP communicators, timed so steps report communication time.
  std::unique_ptr<TimedCommunicator> tp_, pp_, ep_;
  std::unique_ptr<TimedCommunicator> cp_;  // the context-parallel ring (docs/CONTEXT_PARALLEL.md)
  std::unique_ptr<Worker> worker_;
  double collective_seconds_ = 0;  // cumulative, for stats
  uint64_t steps_ = 0;
  double compute_seconds_ = 0;
};

}  // namespace tessera
