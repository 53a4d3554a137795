#include "worker/worker.h"

#include <chrono>
#include <span>

#include "common/error.h"

namespace tessera {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Worker::Worker(const std::string& model_path, const WorkerOptions& options) {
  TESSERA_REQUIRE(options.threads >= 1, ErrorKind::kInvalidInput, "--threads must be >= 1, got ", options.threads);
  TESSERA_REQUIRE(options.kv_block_size >= 1, ErrorKind::kInvalidInput, "KV block size must be >= 1");
  pool_ = std::make_unique<kernels::ThreadPool>(options.threads);
  model_ = load_model(model_path, *pool_);
  const ModelConfig& c = model_->config;
  KvCacheShape shape;
  shape.n_layers = c.n_layers;
  shape.block_size = options.kv_block_size;
  shape.n_kv_heads = c.n_kv_heads;
  shape.head_dim = c.head_dim;
  const int64_t max_tokens = options.max_kv_tokens > 0 ? options.max_kv_tokens : c.max_seq_len;
  shape.n_blocks = options.kv_blocks > 0 ? options.kv_blocks : (max_tokens + shape.block_size - 1) / shape.block_size;
  cache_ = std::make_unique<KvCache>(shape);
}

StepResult Worker::run_step(const StepPlan& plan) {
  const ModelConfig& c = model_->config;
  StepResult result;
  result.step_id = plan.step_id;
  std::vector<ForwardSequence> batch;
  batch.reserve(plan.sequences.size());
  int64_t n_out = 0;
  for (const SequenceStep& s : plan.sequences) {
    for (int32_t b : s.block_table)
      TESSERA_REQUIRE(b >= 0 && b < cache_->shape().n_blocks, ErrorKind::kInternal, "sequence ", s.seq_id,
                      ": KV block id ", b, " outside the pool of ", cache_->shape().n_blocks);
    batch.push_back({s.tokens, s.pos0, s.block_table, s.n_outputs});
    n_out += s.n_outputs;
  }
  logits_.resize(static_cast<size_t>(n_out * c.vocab_size));

  auto t0 = std::chrono::steady_clock::now();
  model_->model->forward(batch, *cache_, logits_.data());
  result.forward_seconds = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  int64_t row = 0;
  for (const SequenceStep& s : plan.sequences) {
    SequenceOutput out;
    out.seq_id = s.seq_id;
    out.rng_state = s.rng_state;
    if (s.return_logits)
      out.logits.assign(logits_.begin() + row * c.vocab_size, logits_.begin() + (row + s.n_outputs) * c.vocab_size);
    for (int32_t i = 0; i < s.n_outputs; ++i, ++row) {
      std::span<float> logits(logits_.data() + row * c.vocab_size, static_cast<size_t>(c.vocab_size));
      out.samples.push_back(sample_token(logits, s.sampling, out.rng_state));
    }
    result.outputs.push_back(std::move(out));
  }
  result.sample_seconds = seconds_since(t0);
  return result;
}

}  // namespace tessera
