// Rank 0's end of the control plane: one connection per worker endpoint, a hello
// with the job secret on each, then the Worker calls on all workers at once.
//
//   CoordinatorClient client(endpoints, {.secret = secret, .call_timeout = 30s});
//   client.load_shard(request);
//   std::future<std::vector<WorkerStep>> f = client.run_step_async(plan);
//   ... f.get() ...   // results in endpoint order, or the first failure
//
// The client owns an event-loop thread; every public method may be called from any
// ordinary thread (it hands the call to the loop with kj::Executor::executeSync, which
// returns as soon as the requests are sent). Failures are tessera::Error naming the
// rank and host: the worker's own error keeps its kind; a call unanswered within the
// timeout, or a dropped connection, is kDisconnected. After either, that worker is
// marked failed and every later call fails at once: its state is unknown, so the job
// cannot go on with it (docs/CONTROL_PLANE.md, "Failures").
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "rpc/executor.h"
#include "rpc/secret.h"
#include "worker/step.h"

namespace tessera::rpc {

struct CoordinatorOptions {
  Secret secret{};                 // the job secret every worker was started with
  uint64_t plan_fingerprint = 0;   // 0: workers do not check it
  uint32_t protocol_version = 0;   // 0: kProtocolVersion (other values: tests)
  std::chrono::milliseconds connect_timeout{10000};  // connect + hello, per worker
  std::chrono::milliseconds call_timeout{60000};     // run_step, release, stats, shutdown
  std::chrono::milliseconds load_timeout{3600000};   // load_shard reads a whole shard
};

struct WorkerInfo {
  std::string endpoint;  // "host:port" as given
  int32_t rank = -1;     // as the worker reported in hello
  std::string host;
};

struct WorkerStep {
  int32_t rank = -1;
  StepResult result;
  StepTimings timings;  // rpc_seconds filled here: round trip minus queue and compute
};

class CoordinatorClient {
 public:
  // Connects to every endpoint and says hello; throws tessera::Error naming the
  // endpoint (kDisconnected: unreachable or timed out; the worker's refusal otherwise).
  CoordinatorClient(std::vector<std::string> endpoints, CoordinatorOptions options);
  ~CoordinatorClient();  // drops the connections; unfinished futures fail kDisconnected
  CoordinatorClient(const CoordinatorClient&) = delete;
  CoordinatorClient& operator=(const CoordinatorClient&) = delete;

  const std::vector<WorkerInfo>& workers() const { return workers_; }

  // Every call goes to all workers concurrently; results are in endpoint order. The
  // future fails with the first error as soon as one worker fails. When the timeout
  // passes, the error names every worker whose call has not returned: ranks blocked in a
  // collective with a hung peer time out too, so that list is an upper bound containing
  // the hung rank; each listed worker is marked failed.
  std::future<std::vector<WorkerStatsValue>> load_shard_async(const LoadShardRequest& request);
  std::future<std::vector<WorkerStep>> run_step_async(const StepPlan& plan);
  std::future<void> release_async(std::span<const uint64_t> seq_ids);
  std::future<std::vector<WorkerStatsValue>> stats_async();

  std::vector<WorkerStatsValue> load_shard(const LoadShardRequest& r) { return load_shard_async(r).get(); }
  std::vector<WorkerStep> run_step(const StepPlan& plan) { return run_step_async(plan).get(); }
  void release(std::span<const uint64_t> seq_ids) { release_async(seq_ids).get(); }
  std::vector<WorkerStatsValue> stats() { return stats_async().get(); }

  // Asks every worker to finish its queued work and stop; a worker whose connection
  // drops while answering counts as stopped. Later calls fail.
  void shutdown();

  struct Loop;  // the event-loop thread's state (coordinator_client.cpp)

 private:
  std::vector<WorkerInfo> workers_;
  std::unique_ptr<Loop> loop_;
};

}  // namespace tessera::rpc
