#include "worker/worker.h"

#include <algorithm>
#include <chrono>
#include <span>

#include "common/error.h"
#include "worker/sharded_sampling.h"
#include "worker/verify.h"

namespace tessera {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int64_t worker_kv_blocks(int64_t max_tokens, int64_t block_size, int cp) {
  if (cp > 1) max_tokens = (max_tokens + cp - 1) / cp + block_size;
  return (max_tokens + block_size - 1) / block_size;
}

Worker::Worker(const std::string& model_path, const WorkerOptions& options, const ShardSpec& spec,
               const ModelComms& comms)
    : comms_(comms), acceptance_(options.acceptance) {
  TESSERA_REQUIRE(options.threads >= 1, ErrorKind::kInvalidInput, "--threads must be >= 1, got ", options.threads);
  TESSERA_REQUIRE(options.kv_block_size >= 1, ErrorKind::kInvalidInput, "KV block size must be >= 1");
  pool_ = std::make_unique<kernels::ThreadPool>(options.threads);
  LoadOptions load_options;
  load_options.int8_copy = options.int8_copy;
  load_options.state_slots = options.state_slots;
  model_ = load_model(model_path, *pool_, spec, comms, load_options);
  const ModelConfig& c = model_->config;
  KvCacheShape shape;
  shape.n_layers = model_->plan.n_layers();
  shape.block_size = options.kv_block_size;
  shape.n_kv_heads = model_->plan.n_kv_heads;
  shape.head_dim = c.head_dim;
  const int64_t max_tokens = options.max_kv_tokens > 0 ? options.max_kv_tokens : c.max_seq_len;
  shape.n_blocks = options.kv_blocks > 0 ? options.kv_blocks : worker_kv_blocks(max_tokens, shape.block_size, cp_size());
  // A fixed-state model keeps its per-sequence state in slots (docs/RECURRENT_GEMMA.md):
  // no KV layers. Blocks stay the coordinator's position accounting (same arithmetic as
  // the coordinator's, so block ids agree); they cost no memory here.
  if (c.fixed_state) shape.n_layers = 0;
  cache_ = std::make_unique<KvCache>(shape);
}

std::vector<float> Worker::full_logits(int64_t row0, int64_t n_rows) {
  const int64_t vocab = model_->config.vocab_size;
  const int64_t cols = model_->model->logits_cols();
  const float* mine = logits_.data() + row0 * cols;
  if (comms_.tp == nullptr || comms_.tp->size() == 1) return std::vector<float>(mine, mine + n_rows * cols);
  // Scoring asked for every logit: gather the vocabulary shards (padded to the largest).
  const int tp = comms_.tp->size();
  const int64_t per = (vocab + tp - 1) / tp;
  std::vector<float> padded(static_cast<size_t>(n_rows * per), 0.0f), all(static_cast<size_t>(n_rows * per * tp));
  for (int64_t r = 0; r < n_rows; ++r) std::copy_n(mine + r * cols, cols, padded.data() + r * per);
  comms_.tp->allgather(padded.data(), all.data(), padded.size(), CommType::kF32);
  std::vector<float> out(static_cast<size_t>(n_rows * vocab));
  for (int rank = 0; rank < tp; ++rank) {
    const int64_t v0 = rank * per, n = std::min(per, vocab - v0);
    for (int64_t r = 0; r < n_rows && n > 0; ++r)
      std::copy_n(all.data() + (rank * n_rows + r) * per, n, out.data() + r * vocab + v0);
  }
  return out;
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
    batch.back().state_slot = s.state_slot;
    batch.back().cp_kv_lens = s.cp_kv_lens;
    n_out += s.n_outputs;
  }
  const int64_t cols = model_->model->logits_cols();
  const bool last_stage = model_->plan.last_stage();
  logits_.resize(static_cast<size_t>(last_stage ? n_out * cols : 0));

  for (const StateCopy& sc : plan.state_copies) model_->model->copy_state(sc.src, sc.dst);
  auto t0 = std::chrono::steady_clock::now();
  model_->model->forward(batch, *cache_, logits_.data());
  result.forward_seconds = seconds_since(t0);
  if (!last_stage) return result;

  t0 = std::chrono::steady_clock::now();
  const int64_t offset = model_->model->logits_offset();
  int64_t row = 0;
  for (const SequenceStep& s : plan.sequences) {
    SequenceOutput out;
    out.seq_id = s.seq_id;
    out.rng_state = s.rng_state;
    if (s.return_logits) out.logits = full_logits(row, s.n_outputs);
    if (!s.draft_tokens.empty()) {  // speculative verify (worker/verify.h)
      const int64_t k = static_cast<int64_t>(s.draft_tokens.size());
      TESSERA_REQUIRE(s.n_outputs == k + 1, ErrorKind::kInvalidInput, "sequence ", s.seq_id, ": ", k,
                      " draft tokens need n_outputs = ", k + 1, ", got ", s.n_outputs);
      std::span<float> rows(logits_.data() + row * cols, static_cast<size_t>((k + 1) * cols));
      // The sharded rule overwrites its rows: keep the raw logits when logprobs are asked.
      std::vector<float> raw;
      if (s.sampling.n_logprobs >= 0) raw.assign(rows.begin(), rows.end());
      VerifyOutcome v;
      if (comms_.tp == nullptr || comms_.tp->size() == 1) {
        v = verify_draft(rows, c.vocab_size, s.draft_tokens, s.draft_probs, s.sampling, out.rng_state, acceptance_);
      } else if (verify_needs_full_rows(s.sampling)) {  // top-k / top-p under TP: gather the K + 1 rows
        v = verify_draft(full_logits(row, k + 1), c.vocab_size, s.draft_tokens, s.draft_probs, s.sampling,
                         out.rng_state, acceptance_);
      } else {
        v = verify_draft_sharded(rows, cols, offset, c.vocab_size, s.draft_tokens, s.draft_probs, s.sampling,
                                 out.rng_state, comms_.tp, acceptance_);
      }
      if (s.sampling.n_logprobs >= 0)
        fill_verify_logprobs(raw, cols, offset, s.sampling.n_logprobs, v.samples, comms_.tp);
      out.accepted = v.accepted;
      out.extra_token = v.extra_token;
      out.samples = std::move(v.samples);
      row += k + 1;
      result.outputs.push_back(std::move(out));
      continue;
    }
    for (int32_t i = 0; i < s.n_outputs; ++i, ++row) {
      std::span<float> logits(logits_.data() + row * cols, static_cast<size_t>(cols));
      out.samples.push_back(
          sample_token_sharded(logits, offset, c.vocab_size, s.sampling, out.rng_state, comms_.tp));
    }
    result.outputs.push_back(std::move(out));
  }
  result.sample_seconds = seconds_since(t0);
  return result;
}

}  // namespace tessera
