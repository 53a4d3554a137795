#include "server/metrics.h"

#include <cstdio>

#include "server/moe_metrics.h"

namespace tessera::server {

namespace {
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
void line(std::string& out, const std::string& name, double v) { out += name + " " + num(v) + "\n"; }
void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  header(out, name, "histogram", help);
  int64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  line(out, name + "_sum", sum_);
  out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}),
      latency_({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}) {}

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}
void Metrics::error(const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  ++errors_[kind];
}
void Metrics::tokens(int64_t prompt, int64_t generated) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt;
  generated_tokens_ += generated;
}
void Metrics::ttft(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(s);
}
void Metrics::itl(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  itl_.observe(s);
}
void Metrics::latency(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  latency_.observe(s);
}

std::string Metrics::render(const LoopStats& loop, const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  header(out, "tessera_requests_total", "counter", "HTTP requests by endpoint and status");
  for (const auto& [key, n] : requests_)
    out += "tessera_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  header(out, "tessera_errors_total", "counter", "errors answered, by kind");
  for (const char* kind : {"invalid_request", "not_found", "auth", "queue_full", "too_large", "disconnect", "internal"}) {
    auto it = errors_.find(kind);
    out += std::string("tessera_errors_total{kind=\"") + kind + "\"} " +
           std::to_string(it == errors_.end() ? 0 : it->second) + "\n";
  }
  header(out, "tessera_prompt_tokens_total", "counter", "prompt tokens of finished requests");
  line(out, "tessera_prompt_tokens_total", static_cast<double>(prompt_tokens_));
  header(out, "tessera_generated_tokens_total", "counter", "tokens generated for finished requests");
  line(out, "tessera_generated_tokens_total", static_cast<double>(generated_tokens_));
  header(out, "tessera_queue_depth", "gauge", "requests waiting for admission");
  line(out, "tessera_queue_depth", static_cast<double>(loop.waiting));
  header(out, "tessera_sequences", "gauge", "sequences by state");
  out += "tessera_sequences{state=\"running\"} " + std::to_string(loop.running) + "\n";
  out += "tessera_sequences{state=\"waiting\"} " + std::to_string(loop.waiting) + "\n";
  header(out, "tessera_kv_blocks", "gauge", "KV cache blocks (cached blocks are free but hold a reusable prefix)");
  out += "tessera_kv_blocks{state=\"used\"} " + std::to_string(loop.kv_blocks_used) + "\n";
  out += "tessera_kv_blocks{state=\"free\"} " + std::to_string(loop.kv_blocks_free) + "\n";
  out += "tessera_kv_blocks{state=\"cached\"} " + std::to_string(loop.kv_blocks_cached) + "\n";
  header(out, "tessera_prefix_cache_hit_blocks_total", "counter", "KV blocks reused from the prefix cache");
  line(out, "tessera_prefix_cache_hit_blocks_total", static_cast<double>(loop.prefix_hit_blocks));
  header(out, "tessera_preemptions_total", "counter", "sequences preempted (recomputed later)");
  line(out, "tessera_preemptions_total", static_cast<double>(loop.preemptions));
  header(out, "tessera_steps_total", "counter", "step plans run");
  line(out, "tessera_steps_total", static_cast<double>(loop.steps));
  header(out, "tessera_step_tokens_total", "counter", "tokens computed in steps (prefill + decode)");
  line(out, "tessera_step_tokens_total", static_cast<double>(loop.step_tokens));
  header(out, "tessera_step_seconds_total", "counter",
         "step time: wall = the coordinator's run_step round trip (the slowest rank), forward = the last stage's forward");
  out += "tessera_step_seconds_total{rank=\"all\",part=\"wall\"} " + num(loop.step_seconds) + "\n";
  out += "tessera_step_seconds_total{rank=\"last_stage\",part=\"forward\"} " + num(loop.forward_seconds) + "\n";
  header(out, "tessera_rank_step_seconds_total", "counter",
         "per-rank step time: compute = the rank's forward + sampling (collectives included), "
         "collectives = its data-plane collectives where measured");
  for (const RankStepTime& r : loop.ranks) {
    const std::string rank = std::to_string(r.rank);
    out += "tessera_rank_step_seconds_total{rank=\"" + rank + "\",part=\"compute\"} " + num(r.compute_seconds) + "\n";
    out += "tessera_rank_step_seconds_total{rank=\"" + rank + "\",part=\"collectives\"} " +
           num(r.collective_seconds) + "\n";
  }
  header(out, "tessera_speculative_tokens_total", "counter",
         "speculative decoding (--draft): draft tokens proposed (kind=drafted), accepted by the target "
         "(kind=accepted), and tokens produced by verify passes (kind=emitted: accepted + one per pass)");
  out += "tessera_speculative_tokens_total{kind=\"drafted\"} " + std::to_string(loop.draft_tokens) + "\n";
  out += "tessera_speculative_tokens_total{kind=\"accepted\"} " + std::to_string(loop.accepted_tokens) + "\n";
  out += "tessera_speculative_tokens_total{kind=\"emitted\"} " + std::to_string(loop.verify_emitted) + "\n";
  header(out, "tessera_speculative_verify_passes_total", "counter",
         "sequence slices that verified a draft (emitted / passes = tokens per target pass)");
  line(out, "tessera_speculative_verify_passes_total", static_cast<double>(loop.verify_steps));
  header(out, "tessera_speculative_acceptance_rate", "gauge", "accepted / drafted since start (0 before any draft)");
  line(out, "tessera_speculative_acceptance_rate",
       loop.draft_tokens > 0 ? static_cast<double>(loop.accepted_tokens) / static_cast<double>(loop.draft_tokens) : 0.0);
  header(out, "tessera_speculative_draft_seconds_total", "counter", "time the draft spent proposing");
  line(out, "tessera_speculative_draft_seconds_total", loop.draft_seconds);
  // K per verify slice: adaptive K and the batch cap move it (sum / count = mean K).
  header(out, "tessera_speculative_k", "histogram",
         "draft tokens verified per verify slice (K; --draft-k-adaptive and --draft-max-batch-tokens change it)");
  int64_t k_count = 0, k_sum = 0;
  for (size_t k = 0; k < loop.verify_k_counts.size(); ++k) {
    k_count += loop.verify_k_counts[k];
    k_sum += static_cast<int64_t>(k) * loop.verify_k_counts[k];
  }
  for (size_t le : {1, 2, 3, 4, 5, 6, 7, 8, 12, 16}) {
    int64_t cum = 0;
    for (size_t k = 0; k <= le && k < loop.verify_k_counts.size(); ++k) cum += loop.verify_k_counts[k];
    out += "tessera_speculative_k_bucket{le=\"" + std::to_string(le) + "\"} " + std::to_string(cum) + "\n";
  }
  out += "tessera_speculative_k_bucket{le=\"+Inf\"} " + std::to_string(k_count) + "\n";
  out += "tessera_speculative_k_sum " + std::to_string(k_sum) + "\n";
  out += "tessera_speculative_k_count " + std::to_string(k_count) + "\n";
  header(out, "tessera_last_step_seconds", "gauge",
         "wall time of the latest step (kind=actual) and what the step-cost model predicted for it (kind=predicted, "
         "0 until it has seen enough steps)");
  out += "tessera_last_step_seconds{kind=\"actual\"} " + num(loop.last_step_seconds) + "\n";
  out += "tessera_last_step_seconds{kind=\"predicted\"} " + num(loop.last_step_predicted) + "\n";
  render_moe_load(out, loop.moe_expert_tokens);
  ttft_.render(out, "tessera_time_to_first_token_seconds", "time to first token");
  itl_.render(out, "tessera_inter_token_latency_seconds", "time between tokens of a sequence");
  latency_.render(out, "tessera_request_latency_seconds", "end-to-end request latency");
  header(out, "tessera_model_info", "gauge", "the model served");
  out += "tessera_model_info{model=\"" + model + "\"} 1\n";
  return out;
}

}  // namespace tessera::server
