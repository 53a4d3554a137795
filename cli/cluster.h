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
  // Every rank must have started (MPI up, checked in with rank 0, its control-plane
  // endpoint exchanged) within this time; else rank 0 names the ranks that did not
  // check in and the job is aborted (docs/CLUSTER.md, "Failure messages").
  std::chrono::milliseconds startup_timeout{60000};
};

// True when the process was started by a launcher (mpirun / srun) or asks for more
// than one rank's worth of parallelism: then MPI is initialised.
bool launched_distributed(const ParallelConfig& parallel);

// Rank 0 prints the start-up layout on stderr once every rank has checked in:
//   tessera: job of N ranks on H hosts: tp T, pp P, cp C, ep E
//   tessera: rank R on HOST: pp . tp . cp . ep .
// Runs the job; returns the process exit code (rank 0: coordinator_main's).
int run_cluster(int* argc, char*** argv, const ClusterOptions& options,
                const std::function<int(StepRunner& runner, const Topology& topology)>& coordinator_main);

}  // namespace tessera::cli
