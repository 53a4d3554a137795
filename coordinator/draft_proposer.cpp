#include "coordinator/draft_proposer.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "worker/verify.h"

namespace tessera {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

void PerSequenceDraftProposer::propose(std::span<DraftRequest> requests) {
  const auto t0 = Clock::now();
  for (DraftRequest& r : requests) {
    uint64_t scratch = 1;
    draft_->propose(r.ctx, r.k, r.sampling, r.rng ? *r.rng : scratch, r.tokens, r.probs);
  }
  seconds += since(t0);
}

BatchedModelDraft::BatchedModelDraft(StepRunner& runner, std::string name)
    : runner_(runner), name_(std::move(name)), allocator_(runner.kv_blocks()) {}

void BatchedModelDraft::release(uint64_t seq_id) {
  auto it = states_.find(seq_id);
  if (it == states_.end()) return;
  allocator_.release(it->second.table);
  states_.erase(it);
}

void BatchedModelDraft::propose(std::span<DraftRequest> requests) {
  const auto t0 = Clock::now();
  const int64_t bs = runner_.kv_block_size();
  const int64_t vocab = runner_.config().vocab_size;
  const int64_t max_pos = runner_.config().max_seq_len;

  struct Active {
    DraftRequest* req;
    State* state;
    int32_t k;
  };
  std::vector<Active> active;
  StepPlan plan;
  for (DraftRequest& r : requests) {
    r.tokens.clear();
    r.probs.clear();
    if (r.k <= 0 || r.ctx.empty()) continue;
    State& st = states_[r.seq_id];
    // Roll back to the longest prefix that still matches (always re-feed the last
    // context token: its logits give the first proposal).
    size_t keep = 0;
    while (keep < st.fed.size() && keep + 1 < r.ctx.size() && st.fed[keep] == r.ctx[keep]) ++keep;
    st.fed.resize(keep);
    const int64_t ctx_len = static_cast<int64_t>(r.ctx.size());
    const int32_t k = static_cast<int32_t>(std::min<int64_t>(r.k, max_pos - ctx_len + 1));
    // The cache must hold the context and the k - 1 proposals fed back.
    if (k <= 0 || !allocator_.ensure(st.table, ctx_len + k - 1, bs)) continue;
    SequenceStep s;
    s.seq_id = r.seq_id;
    s.tokens.assign(r.ctx.begin() + static_cast<std::ptrdiff_t>(keep), r.ctx.end());
    s.pos0 = static_cast<int64_t>(keep);
    s.block_table = st.table;
    s.n_outputs = 1;
    s.return_logits = r.sampling.temperature != 0.0f;
    s.sampling = SamplingParams{};  // greedy on the worker; non-greedy q is drawn here
    plan.sequences.push_back(std::move(s));
    active.push_back({&r, &st, k});
  }
  for (int32_t j = 0; !plan.sequences.empty(); ++j) {
    StepResult result = runner_.run_step(plan);
    StepPlan next;
    std::vector<Active> still;
    for (size_t i = 0; i < active.size(); ++i) {
      Active& a = active[i];
      const SequenceStep& s = plan.sequences[i];
      a.state->fed.insert(a.state->fed.end(), s.tokens.begin(), s.tokens.end());
      const SequenceOutput& out = result.outputs.at(i);
      int32_t x;
      if (a.req->sampling.temperature == 0.0f) {
        x = out.samples.at(0).token;
      } else {
        std::vector<float> q =
            sampling_distribution(std::span<const float>(out.logits).first(static_cast<size_t>(vocab)), a.req->sampling);
        uint64_t scratch = 1;
        x = draw_from(q, rng_next_f32(a.req->rng ? *a.req->rng : scratch));
        a.req->probs.insert(a.req->probs.end(), q.begin(), q.end());
      }
      a.req->tokens.push_back(x);
      if (static_cast<int32_t>(a.req->tokens.size()) >= a.k) continue;
      SequenceStep n = s;
      n.tokens.assign(1, x);
      n.pos0 = static_cast<int64_t>(a.state->fed.size());
      next.sequences.push_back(std::move(n));
      still.push_back(a);
    }
    plan = std::move(next);
    active = std::move(still);
  }
  seconds += since(t0);
}

namespace {

// Owns the draft model's worker and runner next to the proposer that uses them.
class OwnedBatchedModelDraft final : public DraftProposer {
 public:
  OwnedBatchedModelDraft(const std::string& path, const WorkerOptions& options, std::string name)
      : worker_(path, options), runner_(worker_), draft_(runner_, std::move(name)) {}
  void propose(std::span<DraftRequest> requests) override {
    draft_.propose(requests);
    seconds = draft_.seconds;
  }
  void release(uint64_t seq_id) override { draft_.release(seq_id); }
  std::string name() const override { return draft_.name(); }
  int64_t vocab() const { return worker_.config().vocab_size; }

 private:
  Worker worker_;
  LocalStepRunner runner_;
  BatchedModelDraft draft_;
};

}  // namespace

std::unique_ptr<DraftProposer> make_draft_proposer(const std::string& spec, const std::string& target_model,
                                                   const WorkerOptions& options, int64_t target_vocab) {
  TESSERA_REQUIRE(!spec.empty(), ErrorKind::kInvalidInput, "--draft needs ngram, int8 or a checkpoint path");
  if (spec == "ngram") return std::make_unique<PerSequenceDraftProposer>(std::make_unique<NgramDraft>());
  WorkerOptions o = options;
  o.int8_copy = spec == "int8";
  auto d = std::make_unique<OwnedBatchedModelDraft>(spec == "int8" ? target_model : spec, o,
                                                    spec == "int8" ? std::string("int8") : spec);
  TESSERA_REQUIRE(d->vocab() == target_vocab, ErrorKind::kInvalidInput, "the draft ", spec, " has a vocabulary of ",
                  d->vocab(), " tokens, the target ", target_vocab, ": speculative decoding needs the same one");
  return d;
}

}  // namespace tessera
