// A StepExecutor for the control-plane tests: answers every step with "tokens + 1",
// can be told to fail or to block, and records what ran, in what order, and whether
// two calls ever overlapped.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "common/error.h"
#include "rpc/executor.h"

namespace tessera::rpc::testing {

inline constexpr uint64_t kFailingStep = 666;  // run_step throws kResource

class FakeExecutor final : public StepExecutor {
 public:
  explicit FakeExecutor(int32_t rank, std::chrono::milliseconds step_delay = {}) : rank_(rank), delay_(step_delay) {}
  ~FakeExecutor() override { unblock(); }

  void load_shard(const LoadShardRequest& r) override {
    Enter e(*this);
    TESSERA_REQUIRE(r.model_path != "missing", ErrorKind::kNotFound, "no checkpoint at ", r.model_path);
    std::lock_guard<std::mutex> lock(mu_);
    loaded_ = r;
  }

  StepResult run_step(const StepPlan& plan) override {
    Enter e(*this);
    {
      std::unique_lock<std::mutex> lock(mu_);
      order_.push_back(plan.step_id);
      if (blocked_) {
        ++waiting_;
        cv_.notify_all();
        cv_.wait(lock, [this] { return !blocked_; });
      }
    }
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    TESSERA_REQUIRE(plan.step_id != kFailingStep, ErrorKind::kResource, "kv pool exhausted at block 7 on rank ",
                    rank_);
    StepResult r;
    r.step_id = plan.step_id;
    r.forward_seconds = 0.001 * rank_;
    for (const SequenceStep& s : plan.sequences) {
      SequenceOutput o;
      o.seq_id = s.seq_id;
      o.rng_state = s.rng_state + 1;
      for (size_t i = s.tokens.size() - s.n_outputs; i < s.tokens.size(); ++i) {
        o.samples.push_back({s.tokens[i] + 1, -0.5f, {}});
        if (s.return_logits) o.logits.insert(o.logits.end(), {0.f, 1.f, 2.f});
      }
      r.outputs.push_back(std::move(o));
    }
    steps_run_++;
    return r;
  }

  void release(std::span<const uint64_t> ids) override {
    Enter e(*this);
    std::lock_guard<std::mutex> lock(mu_);
    released_.insert(released_.end(), ids.begin(), ids.end());
    order_.push_back(0);  // a release in the sequence of calls
  }

  WorkerStatsValue stats() override {
    Enter e(*this);
    std::lock_guard<std::mutex> lock(mu_);
    stats_calls_++;
    WorkerStatsValue s;
    s.rank = -1;            // the server puts in its own identity
    s.weight_bytes = 1000 + rank_;
    s.kv_blocks = loaded_.kv_blocks;
    s.steps_run = steps_run_;
    return s;
  }

  double take_collective_seconds() override { return 0.25; }

  // run_step waits (on the compute thread) until unblock().
  void block() {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = true;
  }
  void unblock() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      blocked_ = false;
    }
    cv_.notify_all();
  }
  void wait_until_blocked() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return waiting_ > 0; });
  }

  std::vector<uint64_t> order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }
  std::vector<uint64_t> released() {
    std::lock_guard<std::mutex> lock(mu_);
    return released_;
  }
  int stats_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_calls_;
  }
  int max_concurrent() const { return max_concurrent_; }

 private:
  struct Enter {  // counts overlapping executor calls (there must never be any)
    explicit Enter(FakeExecutor& f) : f_(f) {
      const int now = ++f_.running_;
      int seen = f_.max_concurrent_;
      while (now > seen && !f_.max_concurrent_.compare_exchange_weak(seen, now)) {
      }
    }
    ~Enter() { --f_.running_; }
    FakeExecutor& f_;
  };

  const int32_t rank_;
  const std::chrono::milliseconds delay_;
  std::atomic<int> running_{0}, max_concurrent_{0};
  std::atomic<uint64_t> steps_run_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_ = false;
  int waiting_ = 0;
  int stats_calls_ = 0;
  LoadShardRequest loaded_;
  std::vector<uint64_t> order_, released_;
};

}  // namespace tessera::rpc::testing
