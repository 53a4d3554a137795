#include "coordinator/serving_loop.h"

#include <glog/logging.h>

#include <algorithm>

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

namespace {
// What the runner decides: the pipeline depth, and for fixed-state models one worker
// state slot per running sequence.
SchedulerConfig for_runner(SchedulerConfig c, const StepRunner& runner) {
  c.pipeline_depth = std::max(1, runner.pipeline_depth());
  if (runner.config().fixed_state) c.state_slots = runner.state_slots();
  return c;
}
}  // namespace

ServingLoop::ServingLoop(StepRunner& runner, const SchedulerConfig& config, DraftProposer* drafts)
    : runner_(runner),
      drafts_(drafts),
      config_(config),
      scheduler_(for_runner(config, runner), runner.kv_blocks(), runner.kv_block_size()) {
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
  // Plans submitted and not yet applied, oldest first. Under pipeline parallelism
  // `depth` of them keep every stage busy (stage s works on one plan while stage s + 1
  // works on the previous one); with one stage there is one at a time.
  struct InFlight {
    StepPlan plan;
    std::function<StepResult()> wait;
    std::chrono::steady_clock::time_point t0;
    StepShape shape;
    double predicted = 0;
  };
  std::deque<InFlight> flight;
  const size_t depth = static_cast<size_t>(std::max(1, runner_.pipeline_depth()));
  std::vector<uint64_t> release;  // released sequences not yet sent (empty plans are not run)
  auto fail = [&](const std::exception& e) {
    // A worker failed or stopped answering: no later step can run. Every open request
    // gets the reason (HTTP 503) below; the caller reports and exits.
    std::lock_guard<std::mutex> lock(mu_);
    failure_ = e.what();
  };
  bool failed = false;
  while (!failed) {
    std::deque<SequenceRequest> incoming;
    std::vector<std::pair<uint64_t, FinishReason>> cancels;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_ && flight.empty() && inbox_.empty() && cancels_.empty() && scheduler_.running() == 0 &&
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
      if (!scheduler_.add(std::move(r))) refused.push_back(finish_event(id, FinishReason::kError));
    }
    dispatch(refused);
    for (auto& [id, reason] : cancels) scheduler_.finish(id, reason);

    // Fill the pipeline.
    while (flight.size() < depth) {
      Scheduler::Iteration it = scheduler_.schedule(&cost_, drafts_);
      dispatch(it.finished);
      release.insert(release.end(), it.plan.release.begin(), it.plan.release.end());
      if (it.plan.sequences.empty()) break;
      InFlight f;
      f.plan = std::move(it.plan);
      f.plan.release = std::move(release);
      release.clear();
      for (const auto& sq : f.plan.sequences) {
        f.shape.tokens += static_cast<int64_t>(sq.tokens.size());
        f.shape.attended += attended_pairs(sq.pos0, static_cast<int64_t>(sq.tokens.size()));
      }
      f.predicted = cost_.predict(f.shape);
      f.t0 = std::chrono::steady_clock::now();
      try {
        f.wait = runner_.submit(f.plan);
      } catch (const std::exception& e) {
        fail(e);
        failed = true;
        break;
      }
      flight.push_back(std::move(f));
    }
    if (failed) break;

    double wall = 0, forward = 0;
    LoopStats spec;  // this step's speculative counts
    std::vector<SequenceEvent> events;
    InFlight done;
    if (!flight.empty()) {
      done = std::move(flight.front());
      flight.pop_front();
      StepResult result;
      try {
        result = done.wait();
      } catch (const std::exception& e) {
        fail(e);
        break;
      }
      wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - done.t0).count();
      forward = result.forward_seconds;
      cost_.observe(done.shape, wall);
      for (size_t i = 0; i < done.plan.sequences.size() && i < result.outputs.size(); ++i) {
        const SequenceStep& st = done.plan.sequences[i];
        if (st.draft_tokens.empty()) continue;
        ++spec.verify_steps;
        spec.draft_tokens += static_cast<int64_t>(st.draft_tokens.size());
        spec.accepted_tokens += std::max(0, result.outputs[i].accepted);
        spec.verify_emitted += static_cast<int64_t>(result.outputs[i].samples.size());
        const size_t k = st.draft_tokens.size();
        if (spec.verify_k_counts.size() <= k) spec.verify_k_counts.resize(k + 1, 0);
        ++spec.verify_k_counts[k];
      }
      events = scheduler_.apply(done.plan, result);
    }
    // MoE expert load for /metrics, between steps and at most once a second (only with
    // no step in flight: the stats call queues behind steps on the workers).
    std::vector<std::vector<int64_t>> moe;
    bool moe_fresh = false;
    if (done.shape.tokens > 0 && flight.empty() && runner_.config().moe.enabled() &&
        std::chrono::steady_clock::now() - moe_polled_ >= std::chrono::seconds(1)) {
      moe_polled_ = std::chrono::steady_clock::now();
      try {
        moe = runner_.moe_expert_load();
        moe_fresh = true;
      } catch (const std::exception&) {
        // Observability only: a worker that fails will fail the next step too.
      }
    }
    // The stats first, then the events: a client that has its answer sees the step in
    // /metrics.
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (moe_fresh) stats_.moe_expert_tokens = std::move(moe);
      stats_.waiting = scheduler_.waiting() + static_cast<int64_t>(inbox_.size());
      stats_.running = scheduler_.running();
      stats_.kv_blocks_used = scheduler_.blocks().used();
      stats_.kv_blocks_free = scheduler_.blocks().available();
      stats_.kv_blocks_cached = scheduler_.blocks().cached();
      stats_.prefix_hit_blocks = scheduler_.blocks().hits();
      stats_.preemptions = scheduler_.preemptions();
      if (done.shape.tokens > 0) {
        ++stats_.steps;
        stats_.step_tokens += done.shape.tokens;
        stats_.step_seconds += wall;
        stats_.forward_seconds += forward;
        stats_.last_step_seconds = wall;
        stats_.last_step_predicted = done.predicted;
        stats_.ranks = runner_.rank_step_times();
        stats_.verify_steps += spec.verify_steps;
        stats_.draft_tokens += spec.draft_tokens;
        stats_.accepted_tokens += spec.accepted_tokens;
        stats_.verify_emitted += spec.verify_emitted;
        if (stats_.verify_k_counts.size() < spec.verify_k_counts.size())
          stats_.verify_k_counts.resize(spec.verify_k_counts.size(), 0);
        for (size_t k = 0; k < spec.verify_k_counts.size(); ++k) stats_.verify_k_counts[k] += spec.verify_k_counts[k];
        if (drafts_ != nullptr) stats_.draft_seconds = drafts_->seconds;
      }
    }
    dispatch(events);
  }
  // Plans still in flight when stopping: wait for them so no rank is left mid-step.
  if (failure().empty())
    for (InFlight& f : flight) {
      try {
        f.wait();
      } catch (const std::exception&) {
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
  for (auto& [id, stream] : open) stream->push({finish_event(id, FinishReason::kError), now, reason});
}

}  // namespace tessera
