// Brings a distributed job up and down around a coordinator function (DESIGN.md,
// "Processes" and "Two planes"):
//   every rank: MPI, the topology, group communicators, its RankExecutor behind a
//               WorkerServer bound to its host's address (127.0.0.1 when it shares
//               rank 0's host), the job secret from rank 0, the endpoints gathered;
//   rank 0:     the coordinator: connects to every endpoint, says hello with the
//               secret, loads the shards, runs `coordinator_main`, shuts workers down;
//   ranks > 0:  serve until the coordinator's shutdown.
// Any error is printed with the rank and host it happened on and the job is aborted
// (MPI_Abort), so mpirun exits non-zero instead of hanging on a lost peer.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "collectives/topology.h"
#include "coordinator/step_runner.h"
#include "rpc/executor.h"

namespace tessera::cli {

struct ClusterOptions {
  ParallelConfig parallel;
  std::string rpc_host;                        // empty: automatic (see above)
  std::chrono::milliseconds step_timeout{60000};
  rpc::LoadShardRequest load;                  // model path, kv cache, threads per rank
  bool print_layout = false;                   // one line per rank on stderr after loading
};

// True when the process was started by a launcher (mpirun / srun) or asks for more
// than one rank's worth of parallelism: then MPI is initialised.
bool launched_distributed(const ParallelConfig& parallel);

// Runs the job; returns the process exit code (rank 0: coordinator_main's).
int run_cluster(int* argc, char*** argv, const ClusterOptions& options,
                const std::function<int(StepRunner& runner, const Topology& topology)>& coordinator_main);

}  // namespace tessera::cli
