// The serving loop: the coordinator thread that runs continuous batching. Each
// iteration it takes new requests and cancellations from the intake (any thread),
// asks the Scheduler for one StepPlan, runs it through the StepRunner, feeds the result
// back and pushes every sequence's events (tokens, prompt logprobs, finish) into that
// request's RequestStream, which the HTTP side drains from its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/scheduler.h"
#include "coordinator/step_cost_model.h"
#include "coordinator/step_runner.h"

namespace tessera {

struct StreamEvent {
  SequenceEvent event;
  std::chrono::steady_clock::time_point at;  // when the loop produced it
  std::string error;                         // set with FinishReason::kError
};

// One request's events, produced by the loop thread and consumed by another.
class RequestStream {
 public:
  void push(StreamEvent e);
  std::vector<StreamEvent> take();
  // Calls `ready` once, from the producing thread (or at once), when events are there.
  void on_ready(std::function<void()> ready);

 private:
  std::mutex mu_;
  std::vector<StreamEvent> events_;   // guarded by mu_
  std::function<void()> ready_;       // guarded by mu_
};

struct LoopStats {  // a snapshot for /metrics
  int64_t waiting = 0, running = 0;
  int64_t kv_blocks_used = 0, kv_blocks_free = 0, kv_blocks_cached = 0, prefix_hit_blocks = 0;
  int64_t steps = 0, preemptions = 0, step_tokens = 0;
  double step_seconds = 0;     // wall time of run_step, cumulative
  double forward_seconds = 0;  // the last stage's model forward, cumulative
  double last_step_seconds = 0;
  double last_step_predicted = 0;  // the cost model's prediction for it (0: not ready)
  std::vector<RankStepTime> ranks;  // per-rank cumulative step time
  // Speculative decoding (--draft), cumulative over all requests.
  int64_t verify_steps = 0;      // sequence slices that verified a draft
  int64_t draft_tokens = 0;      // proposed
  int64_t accepted_tokens = 0;   // accepted by the target
  int64_t verify_emitted = 0;    // tokens those verify slices produced (accepted + 1 each)
  std::vector<int64_t> verify_k_counts;  // [K]: verify slices that verified K draft tokens
  double draft_seconds = 0;      // time the draft spent proposing
  // MoE models: (token, expert) pairs per [layer][expert], refreshed at most once a
  // second (a stats call to every worker when distributed); empty for dense models.
  std::vector<std::vector<int64_t>> moe_expert_tokens;
};

class ServingLoop {
 public:
  // runner (and drafts, when given: speculative decoding with config.speculative_k
  // tokens per verify) must outlive the loop.
  ServingLoop(StepRunner& runner, const SchedulerConfig& config, DraftProposer* drafts = nullptr);

  // Thread-safe. Returns nullptr when the queue is full (answer 429). The request's id
  // is assigned here.
  std::shared_ptr<RequestStream> submit(SequenceRequest request, uint64_t* id);
  void cancel(uint64_t id, FinishReason reason = FinishReason::kCancelled);
  LoopStats stats() const;
  const SchedulerConfig& config() const { return config_; }

  // Runs on the calling thread until stop() (or should_stop() returns true, polled).
  void run(const std::function<bool()>& should_stop = nullptr);
  void stop();
  // Why run() ended early: the error of a step that failed (a worker lost, a step
  // timeout); empty after a normal stop. Open requests were answered with it.
  std::string failure() const;

 private:
  void dispatch(const std::vector<SequenceEvent>& events);

  StepRunner& runner_;
  DraftProposer* drafts_;
  std::chrono::steady_clock::time_point moe_polled_{};  // last MoE load refresh (loop thread)
  SchedulerConfig config_;
  Scheduler scheduler_;  // loop thread only
  StepCostModel cost_;   // loop thread only: learnt from every step's wall time

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SequenceRequest> inbox_;                                     // guarded by mu_
  std::vector<std::pair<uint64_t, FinishReason>> cancels_;                // guarded by mu_
  std::unordered_map<uint64_t, std::shared_ptr<RequestStream>> streams_;  // guarded by mu_
  uint64_t next_id_ = 1;                                                  // guarded by mu_
  bool stop_ = false;                                                     // guarded by mu_
  LoopStats stats_;                                                       // guarded by mu_
  std::string failure_;                                                   // guarded by mu_
};

}  // namespace tessera
