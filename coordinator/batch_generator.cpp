#include "coordinator/batch_generator.h"

#include <chrono>
#include <deque>
#include <functional>

#include "common/error.h"

namespace tessera {

namespace {

using Clock = std::chrono::steady_clock;

struct Sequence {
  size_t index = 0;              // in the caller's prompt list
  std::vector<int32_t> tokens;   // prompt then generated
  std::vector<int32_t> blocks;
  uint64_t rng = 0;
  int64_t generated = 0;
};

struct MicroBatch {
  std::vector<Sequence> seqs;
  bool prefilled = false;
};

}  // namespace

double BatchStats::decode_tokens_per_second() const {
  const double decode = total_seconds - prefill_seconds;
  const int64_t tokens = generated_tokens - sequences;
  return decode > 0 && tokens > 0 ? static_cast<double>(tokens) / decode : 0;
}

std::vector<std::vector<int32_t>> generate_batch(StepRunner& runner, KvBlockAllocator& allocator,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 const BatchOptions& o, BatchStats* stats) {
  TESSERA_REQUIRE(o.micro_batches >= 1, ErrorKind::kInvalidInput, "micro-batches must be >= 1");
  TESSERA_REQUIRE(o.max_new_tokens >= 1, ErrorKind::kInvalidInput, "max new tokens must be >= 1");
  const int64_t block_size = runner.kv_block_size();
  // Fixed-state models: every sequence holds state slot `index` for the whole batch.
  const bool fixed_state = runner.config().fixed_state;
  TESSERA_REQUIRE(!fixed_state || static_cast<int64_t>(prompts.size()) <= runner.state_slots(),
                  ErrorKind::kInvalidInput, prompts.size(), " sequences at once need as many state slots; the workers hold ",
                  runner.state_slots());
  TESSERA_REQUIRE(runner.cp_size() == 1, ErrorKind::kUnsupported, "batch generation does not run over a "
                  "context-parallel ring (cp = ", runner.cp_size(), ") yet: use the serving scheduler");
  std::vector<MicroBatch> mbs(static_cast<size_t>(std::min<size_t>(o.micro_batches, prompts.size())));
  for (size_t i = 0; i < prompts.size(); ++i) {
    TESSERA_REQUIRE(!prompts[i].empty(), ErrorKind::kInvalidInput, "prompt ", i, " is empty");
    Sequence s;
    s.index = i;
    s.tokens = prompts[i];
    s.rng = o.seed + i;
    const int64_t need = static_cast<int64_t>(s.tokens.size()) + o.max_new_tokens;
    TESSERA_REQUIRE(need <= runner.config().max_seq_len, ErrorKind::kInvalidInput, "prompt ", i, " plus ",
                    o.max_new_tokens, " new tokens exceed the context of ", runner.config().max_seq_len);
    TESSERA_REQUIRE(allocator.ensure(s.blocks, need, block_size), ErrorKind::kResource, "KV cache too small for ",
                    prompts.size(), " sequences of ", need, " positions");
    mbs[i % mbs.size()].seqs.push_back(std::move(s));
  }

  uint64_t step_id = 0;
  auto plan_for = [&](size_t m) {
    MicroBatch& mb = mbs[m];
    StepPlan plan;
    plan.step_id = ++step_id;
    for (const Sequence& s : mb.seqs) {
      if (s.generated >= o.max_new_tokens) continue;
      SequenceStep st;
      st.seq_id = s.index + 1;
      const int64_t n = static_cast<int64_t>(s.tokens.size());
      if (!mb.prefilled) {
        st.tokens = s.tokens;
        st.pos0 = 0;
      } else {
        st.tokens.assign(1, s.tokens.back());
        st.pos0 = n - 1;
      }
      st.block_table = s.blocks;
      if (fixed_state) st.state_slot = static_cast<int32_t>(s.index);
      st.n_outputs = 1;
      st.sampling = o.sampling;
      st.rng_state = s.rng;
      plan.sequences.push_back(std::move(st));
    }
    return plan;
  };

  const auto t0 = Clock::now();
  std::deque<std::pair<size_t, std::function<StepResult()>>> in_flight;
  for (size_t m = 0; m < mbs.size(); ++m) in_flight.emplace_back(m, runner.submit(plan_for(m)));
  size_t prefilled = 0;
  BatchStats st;
  while (!in_flight.empty()) {
    auto [m, wait] = std::move(in_flight.front());
    in_flight.pop_front();
    StepResult r = wait();
    MicroBatch& mb = mbs[m];
    size_t k = 0;
    for (Sequence& s : mb.seqs) {
      if (s.generated >= o.max_new_tokens) continue;
      const SequenceOutput& out = r.outputs.at(k++);
      s.tokens.push_back(out.samples.at(0).token);
      s.rng = out.rng_state;
      ++s.generated;
      ++st.generated_tokens;
    }
    if (!mb.prefilled) {
      mb.prefilled = true;
      if (++prefilled == mbs.size()) st.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    bool active = false;
    for (const Sequence& s : mb.seqs) active |= s.generated < o.max_new_tokens;
    if (active) in_flight.emplace_back(m, runner.submit(plan_for(m)));
  }
  st.total_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  std::vector<std::vector<int32_t>> outputs(prompts.size());
  for (MicroBatch& mb : mbs) {
    for (Sequence& s : mb.seqs) {
      outputs[s.index].assign(s.tokens.begin() + static_cast<int64_t>(prompts[s.index].size()), s.tokens.end());
      allocator.release(s.blocks);
      st.prompt_tokens += static_cast<int64_t>(prompts[s.index].size());
    }
  }
  st.sequences = static_cast<int64_t>(prompts.size());
  if (stats != nullptr) *stats = st;
  return outputs;
}

}  // namespace tessera
