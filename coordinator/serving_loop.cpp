#include "coordinator/serving_loop.h"

#include <glog/logging.h>

#include "common/error.h"

namespace tessera {

void RequestStream::push(StreamEvent e) {
  std::function<void()> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
    ready = std::move(ready_);
    ready_ = nullptr;
  }
  if (ready) ready();
}

std::vector<StreamEvent> RequestStream::take() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<StreamEvent> out;
  out.swap(events_);
  return out;
}

void RequestStream::on_ready(std::function<void()> ready) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (events_.empty()) {
      ready_ = std::move(ready);
      return;
    }
  }
  ready();
}

ServingLoop::ServingLoop(StepRunner& runner, const SchedulerConfig& config)
    : runner_(runner), config_(config), scheduler_(config, runner.kv_blocks(), runner.kv_block_size()) {
  config_ = scheduler_.config();  // with max_context resolved
}

std::shared_ptr<RequestStream> ServingLoop::submit(SequenceRequest request, uint64_t* id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int64_t>(inbox_.size()) + stats_.waiting >= config_.max_waiting) return nullptr;
  request.id = next_id_++;
  if (id) *id = request.id;
  auto stream = std::make_shared<RequestStream>();
  streams_.emplace(request.id, stream);
  inbox_.push_back(std::move(request));
  ++stats_.waiting;  // counted until the loop publishes its own numbers
  cv_.notify_one();
  return stream;
}

void ServingLoop::cancel(uint64_t id, FinishReason reason) {
  std::lock_guard<std::mutex> lock(mu_);
  cancels_.emplace_back(id, reason);
  cv_.notify_one();
}

LoopStats ServingLoop::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::string ServingLoop::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

void ServingLoop::stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

void ServingLoop::dispatch(const std::vector<SequenceEvent>& events) {
  const auto now = std::chrono::steady_clock::now();
  for (const SequenceEvent& e : events) {
    std::shared_ptr<RequestStream> stream;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = streams_.find(e.id);
      if (it == streams_.end()) continue;
      stream = it->second;
      if (e.finish != FinishReason::kNone) streams_.erase(it);
    }
    stream->push({e, now, {}});
  }
}

void ServingLoop::run(const std::function<bool()>& should_stop) {
  while (true) {
    std::deque<SequenceRequest> incoming;
    std::vector<std::pair<uint64_t, FinishReason>> cancels;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_ && inbox_.empty() && cancels_.empty() && scheduler_.running() == 0 &&
             scheduler_.waiting() == 0) {
        cv_.wait_for(lock, std::chrono::milliseconds(100));
        if (should_stop && should_stop()) stop_ = true;
      }
      if (!stop_ && should_stop && should_stop()) stop_ = true;
      if (stop_) break;
      incoming.swap(inbox_);
      cancels.swap(cancels_);
    }
    std::vector<SequenceEvent> refused;
    for (SequenceRequest& r : incoming) {
      const uint64_t id = r.id;
      if (!scheduler_.add(std::move(r))) refused.push_back({id, {}, std::nullopt, FinishReason::kError});
    }
    dispatch(refused);
    for (auto& [id, reason] : cancels) scheduler_.finish(id, reason);

    Scheduler::Iteration it = scheduler_.schedule();
    dispatch(it.finished);
    double wall = 0, forward = 0;
    int64_t tokens = 0;
    if (!it.plan.sequences.empty()) {
      for (const auto& s : it.plan.sequences) tokens += static_cast<int64_t>(s.tokens.size());
      const auto t0 = std::chrono::steady_clock::now();
      StepResult result;
      try {
        result = runner_.run_step(it.plan);
      } catch (const std::exception& e) {
        // A worker failed or stopped answering: no later step can run. Every open
        // request gets the reason (HTTP 503) below; the caller reports and exits.
        std::lock_guard<std::mutex> lock(mu_);
        failure_ = e.what();
        break;
      }
      wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      forward = result.forward_seconds;
      dispatch(scheduler_.apply(it.plan, result));
    }
    // MoE expert load for /metrics, between steps and at most once a second.
    std::vector<std::vector<int64_t>> moe;
    bool moe_fresh = false;
    if (tokens > 0 && runner_.config().moe.enabled() &&
        std::chrono::steady_clock::now() - moe_polled_ >= std::chrono::seconds(1)) {
      moe_polled_ = std::chrono::steady_clock::now();
      try {
        moe = runner_.moe_expert_load();
        moe_fresh = true;
      } catch (const std::exception&) {
        // Observability only: a worker that fails will fail the next step too.
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (moe_fresh) stats_.moe_expert_tokens = std::move(moe);
    stats_.waiting = scheduler_.waiting() + static_cast<int64_t>(inbox_.size());
    stats_.running = scheduler_.running();
    stats_.kv_blocks_used = scheduler_.blocks().used();
    stats_.kv_blocks_free = scheduler_.blocks().available();
    stats_.kv_blocks_cached = scheduler_.blocks().cached();
    stats_.prefix_hit_blocks = scheduler_.blocks().hits();
    stats_.preemptions = scheduler_.preemptions();
    if (tokens > 0) {
      ++stats_.steps;
      stats_.step_tokens += tokens;
      stats_.step_seconds += wall;
      stats_.forward_seconds += forward;
      stats_.last_step_seconds = wall;
    }
  }
  // Shutting down: every open request ends.
  std::unordered_map<uint64_t, std::shared_ptr<RequestStream>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    open.swap(streams_);
  }
  const auto now = std::chrono::steady_clock::now();
  const std::string reason = failure().empty() ? "the server is shutting down" : "a worker failed: " + failure();
  for (auto& [id, stream] : open) stream->push({{id, {}, std::nullopt, FinishReason::kError}, now, reason});
}

}  // namespace tessera
