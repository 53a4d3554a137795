// What a worker process does when the control plane asks: the plain C++ side of
// schemas/worker.capnp's Worker interface. WorkerServer calls a StepExecutor only from
// its compute thread, one call at a time in arrival order, so an implementation needs
// no locking of its own. Anything it throws (tessera::Error above all) goes back to
// the coordinator as an RPC error carrying the message and the error kind.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "worker/step.h"

namespace tessera::rpc {

struct ParallelConfig {
  int32_t tp = 1;
  int32_t pp = 1;
  int32_t cp = 1;
  int32_t ep = 1;
};

struct LoadShardRequest {
  std::string model_path;  // as seen by the worker's host
  ParallelConfig parallel;
  int32_t kv_blocks = 0;
  int32_t kv_block_size = 16;  // tokens per block
  int32_t threads = 0;         // kernel threads; 0: the worker decides
};

struct WorkerStatsValue {
  int32_t rank = 0;
  std::string host;
  uint64_t weight_bytes = 0;
  uint64_t checkpoint_bytes_read = 0;
  int32_t kv_blocks = 0;
  uint64_t steps_run = 0;
  double compute_seconds = 0;     // cumulative
  double collective_seconds = 0;  // cumulative
  // MoE models: (token, expert) pairs this rank routed, for its layers
  // [moe_layer_begin, moe_layer_begin + moe_tokens.size() / moe_experts), [layer][expert].
  int32_t moe_layer_begin = 0;
  int32_t moe_experts = 0;
  std::vector<int64_t> moe_tokens;
};

// Where the time of one step went. compute/collective/queue are measured by the
// worker; rpc_seconds only by the coordinator (round trip minus the worker's part).
struct StepTimings {
  double compute_seconds = 0;
  double collective_seconds = 0;
  double queue_seconds = 0;
  double rpc_seconds = 0;
};

class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  virtual void load_shard(const LoadShardRequest& request) = 0;
  virtual StepResult run_step(const StepPlan& plan) = 0;
  virtual void release(std::span<const uint64_t> seq_ids) = 0;
  virtual WorkerStatsValue stats() = 0;
  // Seconds spent in data-plane collectives since the previous call (the server asks
  // after every step to fill StepTimings::collective_seconds). Default: not measured.
  virtual double take_collective_seconds() { return 0; }
};

}  // namespace tessera::rpc
