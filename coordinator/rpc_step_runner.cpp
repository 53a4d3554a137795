#include "coordinator/rpc_step_runner.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>

#include "common/error.h"

namespace tessera {

RpcStepRunner::RpcStepRunner(rpc::CoordinatorClient& client, const Topology& topology, ModelConfig config,
                             int64_t kv_blocks, int64_t kv_block_size)
    : client_(client),
      topology_(topology),
      config_(std::move(config)),
      kv_blocks_(kv_blocks),
      kv_block_size_(kv_block_size) {}

StepResult RpcStepRunner::run_step(const StepPlan& plan) { return submit(plan)(); }

std::function<StepResult()> RpcStepRunner::submit(const StepPlan& plan) {
  const auto t0 = std::chrono::steady_clock::now();
  auto pending = std::make_shared<std::future<std::vector<rpc::WorkerStep>>>(client_.run_step_async(plan));
  const size_t n = plan.sequences.size();
  return [this, pending, n, t0] {
    std::vector<rpc::WorkerStep> steps = pending->get();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return collect(std::move(steps), n, wall);
  };
}

StepResult RpcStepRunner::collect(std::vector<rpc::WorkerStep> steps, size_t n_sequences, double wall) {
  const int result_rank = topology_.rank_of(topology_.pp_size() - 1, 0, 0);
  StepResult result;
  bool found = false;
  double compute = 0, collectives = 0;
  for (rpc::WorkerStep& s : steps) {
    compute = std::max(compute, s.timings.compute_seconds);
    if (s.rank >= 0) {
      if (static_cast<size_t>(s.rank) >= ranks_.size()) {
        const size_t old = ranks_.size();
        ranks_.resize(static_cast<size_t>(s.rank) + 1);
        for (size_t r = old; r < ranks_.size(); ++r) ranks_[r].rank = static_cast<int>(r);
      }
      RankStepTime& t = ranks_[static_cast<size_t>(s.rank)];
      t.compute_seconds += s.timings.compute_seconds;
      t.collective_seconds += s.timings.collective_seconds;
      ++t.steps;
    }
    collectives = std::max(collectives, s.timings.collective_seconds);
    if (s.rank == result_rank) {
      result = std::move(s.result);
      found = true;
    }
  }
  TESSERA_REQUIRE(found, ErrorKind::kInternal, "no result from rank ", result_rank, " (last stage, tp 0)");
  TESSERA_REQUIRE(result.outputs.size() == n_sequences, ErrorKind::kInternal, "rank ", result_rank, " returned ",
                  result.outputs.size(), " outputs for ", n_sequences, " sequences");
  split_.wall += wall;
  split_.compute += compute;
  split_.collectives += collectives;
  split_.rpc += std::max(0.0, wall - compute);
  ++split_.steps;
  return result;
}

std::vector<std::vector<int64_t>> RpcStepRunner::moe_expert_load() {
  std::vector<std::vector<int64_t>> out;
  if (!config_.moe.enabled()) return out;
  for (const rpc::WorkerStatsValue& w : client_.stats()) {
    MoeLoad l;
    l.layer_begin = w.moe_layer_begin;
    l.experts = w.moe_experts;
    l.tokens = w.moe_tokens;
    moe_load_merge(out, l);
  }
  return out;
}

}  // namespace tessera
