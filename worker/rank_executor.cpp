#include "worker/rank_executor.h"

#include <chrono>

#include "common/error.h"
#include "model/moe_load.h"

namespace tessera {

RankExecutor::RankExecutor(const Topology& topology, GroupCommunicators& comms, std::string host)
    : topology_(topology), comms_(comms), host_(std::move(host)) {}

void RankExecutor::load_shard(const rpc::LoadShardRequest& r) {
  const int rank = topology_.world_rank();
  TESSERA_REQUIRE(r.parallel.tp == topology_.tp_size() && r.parallel.pp == topology_.pp_size(),
                  ErrorKind::kInvalidInput, "rank ", rank, ": load_shard asks for tp ", r.parallel.tp, " pp ",
                  r.parallel.pp, " but this job was launched with tp ", topology_.tp_size(), " pp ",
                  topology_.pp_size());
  TESSERA_REQUIRE(r.parallel.cp == topology_.cp_size(), ErrorKind::kInvalidInput, "rank ", rank,
                  ": load_shard asks for cp ", r.parallel.cp, " but this job was launched with cp ",
                  topology_.cp_size());
  WorkerOptions o;
  o.threads = r.threads > 0 ? r.threads : 1;
  o.kv_block_size = r.kv_block_size;
  o.kv_blocks = r.kv_blocks;
  ShardSpec spec;
  spec.tp = topology_.tp_size();
  spec.pp = topology_.pp_size();
  spec.tp_rank = topology_.tp_rank();
  spec.pp_rank = topology_.pp_rank();
  spec.ep = topology_.ep_size();
  spec.ep_rank = topology_.ep_rank();
  tp_ = std::make_unique<TimedCommunicator>(*comms_.tp);
  pp_ = std::make_unique<TimedCommunicator>(*comms_.pp);
  ep_ = std::make_unique<TimedCommunicator>(*comms_.ep);
  cp_ = std::make_unique<TimedCommunicator>(*comms_.cp);
  ModelComms mc;
  mc.tp = tp_.get();
  mc.pp = pp_.get();
  mc.ep = ep_.get();
  mc.cp = cp_.get();
  // Errors travel back to the coordinator, which names this rank and host.
  worker_ = std::make_unique<Worker>(r.model_path, o, spec, mc);
}

StepResult RankExecutor::run_step(const StepPlan& plan) {
  TESSERA_REQUIRE(worker_ != nullptr, ErrorKind::kInternal, "rank ", topology_.world_rank(),
                  ": run_step before load_shard");
  const auto t0 = std::chrono::steady_clock::now();
  StepResult r = worker_->run_step(plan);
  compute_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++steps_;
  return r;
}

// Blocks and lengths are the coordinator's bookkeeping; a worker keeps no per-sequence
// state to drop (recurrent state slots will be reset here when they exist).
void RankExecutor::release(std::span<const uint64_t>) {}

double RankExecutor::take_collective_seconds() {
  if (tp_ == nullptr) return 0;
  const double s = tp_->take_seconds() + pp_->take_seconds() + ep_->take_seconds() + cp_->take_seconds();
  collective_seconds_ += s;
  return s;
}

rpc::WorkerStatsValue RankExecutor::stats() {
  rpc::WorkerStatsValue s;
  s.rank = topology_.world_rank();
  s.host = host_;
  s.steps_run = steps_;
  s.compute_seconds = compute_seconds_;
  s.collective_seconds = collective_seconds_;
  if (worker_ != nullptr) {
    s.weight_bytes = worker_->weight_bytes();
    s.checkpoint_bytes_read = worker_->checkpoint().bytes_touched();
    s.kv_blocks = static_cast<int32_t>(worker_->kv_shape().n_blocks);
    const MoeLoad moe = moe_load_of(worker_->model());
    s.moe_layer_begin = static_cast<int32_t>(moe.layer_begin);
    s.moe_experts = static_cast<int32_t>(moe.experts);
    s.moe_tokens = moe.tokens;
  }
  return s;
}

}  // namespace tessera
