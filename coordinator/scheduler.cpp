#include "coordinator/scheduler.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/error.h"
#include "model/cp_layout.h"

namespace tessera {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "none";
}

namespace {

// log-softmax of `row` at `token`, and the n most likely tokens (descending, lowest
// id first on ties), like the worker's sampler reports them.
PromptLogprob prompt_logprob(std::span<const float> row, int32_t token, int32_t n_top) {
  float mx = -INFINITY;
  for (float v : row) mx = std::max(mx, v);
  double sum = 0;
  for (float v : row) sum += std::exp(static_cast<double>(v - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  PromptLogprob p;
  if (token >= 0 && static_cast<size_t>(token) < row.size()) p.logprob = row[static_cast<size_t>(token)] - lse;
  if (n_top > 0) {
    std::vector<int32_t> ids(row.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    const size_t k = std::min(ids.size(), static_cast<size_t>(n_top));
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), [&](int32_t a, int32_t b) {
      return row[static_cast<size_t>(a)] > row[static_cast<size_t>(b)] ||
             (row[static_cast<size_t>(a)] == row[static_cast<size_t>(b)] && a < b);
    });
    for (size_t i = 0; i < k; ++i) p.top.push_back({ids[i], row[static_cast<size_t>(ids[i])] - lse});
  }
  return p;
}

}  // namespace

Scheduler::Scheduler(const SchedulerConfig& config, int64_t kv_blocks, int64_t kv_block_size)
    : config_(config), cache_(kv_blocks, kv_block_size) {
  TESSERA_REQUIRE(config_.cp >= 1, ErrorKind::kInvalidInput, "scheduler: cp must be >= 1, got ", config_.cp);
  if (config_.cp > 1) config_.prefix_caching = false;
  TESSERA_REQUIRE(config_.max_batch_tokens >= 1, ErrorKind::kInvalidInput, "max batch tokens must be >= 1");
  TESSERA_REQUIRE(config_.max_running >= 1, ErrorKind::kInvalidInput, "max running sequences must be >= 1");
  TESSERA_REQUIRE(config_.max_waiting >= 0, ErrorKind::kInvalidInput, "max queue must be >= 0");
  TESSERA_REQUIRE(config_.speculative_max_batch_tokens >= 0, ErrorKind::kInvalidInput,
                  "--draft-max-batch-tokens must be >= 0, got ", config_.speculative_max_batch_tokens);
  // Under CP each rank's pool holds about 1/C of a sequence (one block of slack).
  const int64_t pool_positions = config_.cp > 1 ? (kv_blocks - 1) * kv_block_size * config_.cp
                                                : kv_blocks * kv_block_size;
  if (config_.max_context <= 0 || config_.max_context > pool_positions) config_.max_context = pool_positions;
  if (config_.state_slots > 0) {
    paired_slots_ = config_.speculative_k > 0 && config_.cp == 1;
    TESSERA_REQUIRE(!paired_slots_ || config_.state_slots >= 2, ErrorKind::kInvalidInput,
                    "speculative decoding of a fixed-state model needs 2 state slots per sequence; the workers hold ",
                    config_.state_slots);
    config_.max_running = std::min(config_.max_running, paired_slots_ ? config_.state_slots / 2 : config_.state_slots);
    config_.prefix_caching = false;
    for (int64_t i = config_.state_slots - 1; i >= 0; --i) free_state_slots_.push_back(static_cast<int32_t>(i));
  }
}

bool Scheduler::add(SequenceRequest request) {
  if (static_cast<int64_t>(waiting_.size()) >= config_.max_waiting) return false;
  TESSERA_REQUIRE(!request.prompt.empty(), ErrorKind::kInvalidInput, "request ", request.id, ": empty prompt");
  TESSERA_REQUIRE(static_cast<int64_t>(request.prompt.size()) <= config_.max_context, ErrorKind::kInvalidInput,
                  "request ", request.id, ": prompt of ", request.prompt.size(), " tokens exceeds the context of ",
                  config_.max_context);
  auto s = std::make_unique<Sequence>();
  s->tokens = request.prompt;
  s->rng_state = request.rng_state != 0 ? request.rng_state : 0x9E3779B97F4A7C15ull;
  s->draft_rng = (s->rng_state ^ 0xD1B54A32D192ED03ull) | 1;
  s->draft_k = AdaptiveK(config_.speculative_k, AdaptiveK::kMin, config_.speculative_k_max);
  s->arrival = next_arrival_++;
  s->req = std::move(request);
  waiting_.push_back(std::move(s));
  return true;
}

void Scheduler::finish(uint64_t id, FinishReason reason) { pending_finish_.emplace_back(id, reason); }

Scheduler::Sequence* Scheduler::find_running(uint64_t id) {
  for (auto& s : running_)
    if (s->req.id == id) return s.get();
  return nullptr;
}

void Scheduler::free_slots(Sequence& s) {
  if (s.state_slot >= 0) free_state_slots_.push_back(std::exchange(s.state_slot, -1));
  if (s.backup_slot >= 0) free_state_slots_.push_back(std::exchange(s.backup_slot, -1));
  s.restore = false;
}

void Scheduler::preempt(Sequence& s) {
  auto it = std::find_if(running_.begin(), running_.end(), [&](const SeqPtr& p) { return p.get() == &s; });
  CHECK(it != running_.end());
  CHECK(!s.scheduled);
  cache_.release(s.table);
  s.hashes.clear();
  s.computed = 0;
  free_slots(s);
  s.cp_kv_lens.clear();
  waiting_.push_front(std::move(*it));
  running_.erase(it);
  ++preemptions_;
}

bool Scheduler::reserve(Sequence& s, int64_t end, std::vector<SeqPtr>&) {
  while (!cache_.ensure(s.table, end)) {
    Sequence* victim = nullptr;
    bool in_flight_holds = false;
    for (const SeqPtr& p : running_) {
      Sequence* v = p.get();
      if (v == &s || v->arrival < s.arrival || v->table.empty()) continue;
      if (v->scheduled) {
        in_flight_holds = true;
      } else if (victim == nullptr || v->arrival > victim->arrival) {
        victim = v;
      }
    }
    if (victim != nullptr) {
      preempt(*victim);
      continue;
    }
    if (!in_flight_holds) preempt(s);
    return false;
  }
  return true;
}

int64_t Scheduler::slots_after(const Sequence& s, int64_t n) const {
  if (config_.cp == 1) return s.computed + n;
  std::vector<int64_t> lens = s.cp_kv_lens;
  if (lens.empty()) lens.assign(static_cast<size_t>(config_.cp), 0);
  return cp_slots_after(cp_place(n, config_.cp, lens), lens);
}

int64_t Scheduler::tokens_that_fit(const Sequence& s, int64_t slots) const {
  if (config_.cp == 1) return slots - s.computed;
  // A zigzag chunk of n tokens adds at most ceil(n / C) + 1 entries to a rank: start
  // from that estimate and step down to the exact largest n.
  const int64_t longest = s.cp_kv_lens.empty() ? 0 : *std::max_element(s.cp_kv_lens.begin(), s.cp_kv_lens.end());
  int64_t n = std::max<int64_t>(0, (slots - longest) * config_.cp);
  while (n > 0 && slots_after(s, n) > slots) --n;
  return n;
}

void Scheduler::add_slice(Sequence& s, int64_t n, StepPlan& plan) {
  SequenceStep st;
  if (config_.cp > 1 && s.cp_kv_lens.empty()) s.cp_kv_lens.assign(static_cast<size_t>(config_.cp), 0);
  st.cp_kv_lens = s.cp_kv_lens;
  st.seq_id = s.req.id;
  st.tokens.assign(s.tokens.begin() + s.computed, s.tokens.begin() + s.computed + n);
  st.pos0 = s.computed;
  st.block_table = s.table;
  st.state_slot = s.state_slot;
  if (s.restore) {  // back to the state at `computed` saved before a rejected verify
    plan.state_copies.push_back({s.backup_slot, s.state_slot});
    s.restore = false;
  }
  st.sampling = s.req.sampling;
  st.rng_state = s.rng_state;
  const bool ends = s.computed + n == static_cast<int64_t>(s.tokens.size());
  if (s.req.prompt_logprobs && s.logprobs_done < static_cast<int64_t>(s.req.prompt.size())) {
    st.return_logits = true;
    st.n_outputs = static_cast<int32_t>(n);
  } else {
    st.n_outputs = ends ? 1 : 0;
  }
  s.scheduled = true;
  plan.sequences.push_back(std::move(st));
}

void Scheduler::publish_blocks(Sequence& s) {
  if (!config_.prefix_caching) return;
  const int64_t bs = cache_.block_size();
  const std::span<const int32_t> toks(s.tokens);
  while (static_cast<int64_t>(s.hashes.size() + 1) * bs <= s.computed) {
    const size_t i = s.hashes.size();
    const uint64_t parent = i == 0 ? 0 : s.hashes.back();
    const uint64_t h = PrefixCache::block_hash(parent, toks.subspan(i * static_cast<size_t>(bs), static_cast<size_t>(bs)));
    cache_.publish(s.table[i], h);
    s.hashes.push_back(h);
  }
}

Scheduler::Iteration Scheduler::schedule(const StepCostModel* cost, DraftProposer* drafts) {
  Iteration it;
  it.plan.step_id = next_step_++;
  const int64_t preempted_before = preemptions_;

  // 1. Ends asked for from outside; requests that need no compute.
  for (auto& [id, reason] : pending_finish_) {
    auto mark = [&](Sequence& s) {
      if (s.finish == FinishReason::kNone) {
        s.finish = reason;
        it.finished.push_back(finish_event(s.req.id, reason));
      }
    };
    for (auto& s : running_)
      if (s->req.id == id) mark(*s);
    for (auto& s : waiting_)
      if (s->req.id == id) mark(*s);
  }
  pending_finish_.clear();
  for (auto& s : waiting_)
    if (s->finish == FinishReason::kNone && s->req.max_tokens <= 0 && !s->req.prompt_logprobs) {
      s->finish = FinishReason::kLength;
      it.finished.push_back(finish_event(s->req.id, FinishReason::kLength));
    }
  for (auto i = running_.begin(); i != running_.end();) {
    // A finished sequence leaves once no step in flight holds it (several plans can be
    // in flight under pipeline parallelism; a sequence is in at most one of them).
    if ((*i)->finish != FinishReason::kNone && !(*i)->scheduled) {
      cache_.release((*i)->table);
      if (drafts != nullptr) drafts->release((*i)->req.id);
      free_slots(**i);
      it.plan.release.push_back((*i)->req.id);
      i = running_.erase(i);
    } else {
      ++i;
    }
  }
  std::erase_if(waiting_, [](const SeqPtr& s) { return s->finish != FinishReason::kNone; });

  int64_t budget = config_.max_batch_tokens;
  const int64_t bs = cache_.block_size();
  std::vector<Sequence*> order;  // by priority: earliest arrival first
  for (auto& s : running_) order.push_back(s.get());
  std::sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) { return a->arrival < b->arrival; });
  auto is_running = [&](Sequence* s) {
    return std::any_of(running_.begin(), running_.end(), [&](const SeqPtr& p) { return p.get() == s; });
  };

  // The time bound: what the plan so far is predicted to cost, and the largest slice
  // of up to n_max tokens after pos0 that still fits (binary search: cost grows with n).
  const bool timed = cost != nullptr && config_.max_step_seconds > 0 && cost->ready();
  StepShape planned;
  auto plan_slice = [&](Sequence& s, int64_t n) {
    planned.tokens += n;
    planned.attended += attended_pairs(s.computed, n);
    add_slice(s, n, it.plan);
  };
  auto time_fit = [&](int64_t pos0, int64_t n_max) -> int64_t {
    if (!timed) return n_max;
    auto fits = [&](int64_t n) {
      return cost->predict({planned.tokens + n, planned.attended + attended_pairs(pos0, n)}) <= config_.max_step_seconds;
    };
    int64_t lo = 0, hi = n_max;  // fits(lo) assumed (adding nothing)
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      if (fits(mid)) lo = mid; else hi = mid - 1;
    }
    // An empty plan always makes progress: at least a block's worth of tokens.
    if (lo == 0 && it.plan.sequences.empty()) lo = std::min(n_max, bs);
    return lo;
  };

  // 2. Decodes: one token each, or the pending token plus a draft's proposals to verify.
  // A fixed-state sequence rolled back after a rejection (restore) decodes here too: its
  // slice re-feeds every token since the saved state, then verifies the new drafts.
  auto pending = [](const Sequence* s) { return static_cast<int64_t>(s->tokens.size()) - s->computed; };
  std::vector<Sequence*> decoders;
  for (Sequence* s : order)
    if (!s->scheduled && s->finish == FinishReason::kNone && (pending(s) == 1 || (s->restore && pending(s) > 1)))
      decoders.push_back(s);
  const int64_t depth = std::max<int64_t>(1, config_.pipeline_depth);
  const auto decode_cap = static_cast<size_t>((static_cast<int64_t>(running_.size()) + depth - 1) / depth);
  if (decoders.size() > decode_cap) decoders.resize(decode_cap);
  std::vector<DraftRequest> proposals;
  // Fixed-state models speculate with a saved state per sequence (paired_slots_). CP
  // sequences decode plainly (their per-rank KV lengths after a partial acceptance).
  if (drafts != nullptr && config_.speculative_k > 0 && config_.cp == 1 &&
      (config_.state_slots == 0 || paired_slots_)) {
    // The K each decoder wants (0: plain decode), then the batch cap over all of them.
    std::vector<int32_t> want(decoders.size(), 0);
    for (size_t i = 0; i < decoders.size(); ++i) {
      const Sequence* s = decoders[i];
      // Verify steps report the sampled token's logprob and its top alternatives
      // (fill_verify_logprobs); prompt logprobs (echo) keep a request on plain steps.
      if (s->req.prompt_logprobs) continue;
      const int64_t room = std::min(s->req.max_tokens - s->generated - 1,
                                    config_.max_context - static_cast<int64_t>(s->tokens.size()) - 1);
      want[i] = static_cast<int32_t>(std::max<int64_t>(0, std::min<int64_t>(s->draft_k.k(), room)));
    }
    cap_draft_lengths(want, config_.speculative_max_batch_tokens);
    for (size_t i = 0; i < decoders.size(); ++i) {
      Sequence* s = decoders[i];
      const int32_t k = want[i];
      if (k <= 0) continue;
      DraftRequest r;
      r.seq_id = s->req.id;
      r.ctx = s->tokens;
      r.k = k;
      r.sampling = s->req.sampling;
      r.rng = &s->draft_rng;
      proposals.push_back(std::move(r));
    }
    if (!proposals.empty()) drafts->propose(proposals);
  }
  size_t next_proposal = 0;
  for (Sequence* s : decoders) {
    DraftRequest* d = nullptr;
    if (next_proposal < proposals.size() && proposals[next_proposal].seq_id == s->req.id) d = &proposals[next_proposal++];
    if (budget <= 0) break;
    if (!is_running(s)) continue;
    const int64_t own = pending(s);  // 1, or the tokens a restored state re-feeds
    if (own > budget) continue;      // a long re-feed goes through the prefill pass
    int64_t k = d != nullptr ? static_cast<int64_t>(d->tokens.size()) : 0;
    k = std::min(k, budget - own);
    if (!reserve(*s, slots_after(*s, own + k), running_)) continue;
    planned.tokens += own + k;
    planned.attended += attended_pairs(s->computed, own + k);
    const bool restoring = s->restore;  // add_slice restores the saved state first
    add_slice(*s, own, it.plan);
    if (k > 0) {
      SequenceStep& st = it.plan.sequences.back();
      const size_t vocab = d->probs.empty() ? 0 : d->probs.size() / d->tokens.size();
      st.draft_tokens.assign(d->tokens.begin(), d->tokens.begin() + k);
      st.tokens.insert(st.tokens.end(), st.draft_tokens.begin(), st.draft_tokens.end());
      if (vocab > 0) st.draft_probs.assign(d->probs.begin(), d->probs.begin() + static_cast<std::ptrdiff_t>(k * vocab));
      st.n_outputs = static_cast<int32_t>(k + 1);
      // The state before the pending token, kept to roll back to (copies run before the
      // step's forward pass); a restoring slice's saved state is already that one.
      if (paired_slots_ && !restoring) it.plan.state_copies.push_back({s->state_slot, s->backup_slot});
    }
    budget -= own + k;
  }
  // 3. Prefill chunks of running sequences. Decoders (one pending token) are step 2's:
  // those beyond decode_cap wait for the next plan, so that under PP each plan in flight
  // carries its share of the decodes.
  for (Sequence* s : order) {
    if (budget <= 0) break;
    if (!is_running(s) || s->scheduled || s->finish != FinishReason::kNone) continue;
    if (pending(s) == 1) continue;
    int64_t n = std::min<int64_t>(static_cast<int64_t>(s->tokens.size()) - s->computed, budget);
    n = time_fit(s->computed, n);
    if (n <= 0) continue;
    auto fit = [&] {
      return tokens_that_fit(*s, (static_cast<int64_t>(s->table.size()) + cache_.available()) * bs);
    };
    if (fit() <= 0 && !reserve(*s, slots_after(*s, 1), running_)) continue;
    n = std::min(n, fit());
    if (n <= 0) continue;
    CHECK(cache_.ensure(s->table, slots_after(*s, n)));
    plan_slice(*s, n);
    budget -= n;
  }
  // 4. Admission, first come first served.
  while (!waiting_.empty() && budget > 0 && static_cast<int64_t>(running_.size()) < config_.max_running) {
    Sequence& s = *waiting_.front();
    CHECK(s.table.empty());
    if (timed && !running_.empty()) {
      // Once its prompt is in, it decodes next to every running sequence: that step
      // must fit too, or admitting it would break the bound for everyone.
      StepShape decode_all;
      for (const auto& r : running_) {
        decode_all.tokens += 1;
        decode_all.attended += attended_pairs(static_cast<int64_t>(r->tokens.size()), 1);
      }
      decode_all.tokens += 1;
      decode_all.attended += attended_pairs(static_cast<int64_t>(s.tokens.size()), 1);
      if (cost->predict(decode_all) > config_.max_step_seconds) break;
    }
    if (config_.prefix_caching && !s.req.prompt_logprobs) {
      const int64_t max_blocks = (static_cast<int64_t>(s.tokens.size()) - 1) / bs;
      s.table = cache_.match(s.tokens, max_blocks, &s.hashes);
      s.computed = static_cast<int64_t>(s.table.size()) * bs;
    }
    const int64_t fit = tokens_that_fit(s, (static_cast<int64_t>(s.table.size()) + cache_.available()) * bs);
    int64_t n = std::min({static_cast<int64_t>(s.tokens.size()) - s.computed, budget, fit});
    if (n > 0) n = time_fit(s.computed, n);
    if (n <= 0) {
      cache_.release(s.table);
      s.hashes.clear();
      s.computed = 0;
      break;
    }
    CHECK(cache_.ensure(s.table, slots_after(s, n)));
    if (config_.state_slots > 0) {  // slots are free: running_ < max_running <= state_slots (/ 2)
      auto take_slot = [&] {
        CHECK(!free_state_slots_.empty());
        const int32_t slot = free_state_slots_.back();
        free_state_slots_.pop_back();
        return slot;
      };
      s.state_slot = take_slot();
      if (paired_slots_) s.backup_slot = take_slot();
    }
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    plan_slice(s, n);
    budget -= n;
  }
  it.preempted = preemptions_ - preempted_before;
  return it;
}

std::vector<SequenceEvent> Scheduler::apply(const StepPlan& plan, const StepResult& result) {
  std::vector<SequenceEvent> events;
  CHECK_EQ(plan.sequences.size(), result.outputs.size()) << "step " << plan.step_id;
  for (size_t i = 0; i < plan.sequences.size(); ++i) {
    const SequenceStep& st = plan.sequences[i];
    const SequenceOutput& out = result.outputs[i];
    Sequence* s = find_running(st.seq_id);
    if (s == nullptr) continue;
    s->scheduled = false;
    if (s->finish != FinishReason::kNone) continue;  // ended (cancelled) while its step ran
    s->rng_state = out.rng_state;
    s->computed = st.pos0 + static_cast<int64_t>(st.tokens.size());
    if (config_.cp > 1) {  // the entries each rank stored in this step (model/cp_layout.h)
      s->cp_kv_lens = st.cp_kv_lens;
      cp_advance(cp_place(static_cast<int64_t>(st.tokens.size()), config_.cp, s->cp_kv_lens), s->cp_kv_lens);
    }
    SequenceEvent ev;
    ev.id = s->req.id;
    if (st.return_logits && st.n_outputs > 0 && !out.logits.empty()) {
      const size_t vocab = out.logits.size() / static_cast<size_t>(st.n_outputs);
      const int64_t prompt_len = static_cast<int64_t>(s->req.prompt.size());
      const int64_t first_row = static_cast<int64_t>(st.tokens.size()) - st.n_outputs;
      for (int32_t j = 0; j < st.n_outputs; ++j) {
        const int64_t q = st.pos0 + first_row + j + 1;  // the prompt position this row predicts
        if (q >= prompt_len || q < s->logprobs_done) continue;
        std::span<const float> row(out.logits.data() + static_cast<size_t>(j) * vocab, vocab);
        PromptLogprob p = prompt_logprob(row, s->req.prompt[static_cast<size_t>(q)], s->req.sampling.n_logprobs);
        p.position = q;
        ev.prompt_logprobs.push_back(std::move(p));
        s->logprobs_done = q + 1;
      }
    }
    // One generated token: emitted unless the sequence is over (max_tokens, a stop token).
    auto emit = [&](const SampleResult& sample) {
      if (s->finish != FinishReason::kNone) return;
      if (s->generated >= s->req.max_tokens) {
        s->finish = FinishReason::kLength;
        return;
      }
      const auto& stops = s->req.stop_tokens;
      if (std::find(stops.begin(), stops.end(), sample.token) != stops.end()) {
        s->finish = FinishReason::kStop;
        return;
      }
      s->tokens.push_back(sample.token);
      ++s->generated;
      if (s->generated >= s->req.max_tokens || static_cast<int64_t>(s->tokens.size()) >= config_.max_context)
        s->finish = FinishReason::kLength;
      SequenceEvent tok;
      tok.id = s->req.id;
      tok.token = sample;
      tok.finish = s->finish;
      tok.speculative = s->speculative;
      events.push_back(std::move(tok));
    };
    if (out.accepted >= 0) {
      // A verify step: the pending token and the accepted draft tokens now have K/V;
      // the rejected positions' K/V is overwritten by the next step (rollback is this
      // length change). samples = the accepted tokens, then the correction or bonus.
      TESSERA_REQUIRE(out.accepted <= static_cast<int32_t>(st.draft_tokens.size()) &&
                          out.samples.size() == static_cast<size_t>(out.accepted) + 1,
                      ErrorKind::kInternal, "sequence ", st.seq_id, ": verify result with ", out.accepted,
                      " accepted of ", st.draft_tokens.size(), " and ", out.samples.size(), " samples");
      // Every token before the drafts (the pending one, or a re-fed run) plus the accepted.
      s->computed = st.pos0 + static_cast<int64_t>(st.tokens.size() - st.draft_tokens.size()) + out.accepted;
      if (paired_slots_ && out.accepted < static_cast<int32_t>(st.draft_tokens.size())) {
        // The rejected tokens went into the recurrent state: roll back to the state
        // saved before this step; the next slice restores it and re-feeds from there.
        s->computed = st.pos0;
        s->restore = true;
      }
      ++s->speculative.verify_steps;
      s->speculative.drafted += static_cast<int64_t>(st.draft_tokens.size());
      s->speculative.accepted += out.accepted;
      if (config_.speculative_adaptive) {
        s->draft_k.update(static_cast<int64_t>(st.draft_tokens.size()), out.accepted);
        s->speculative.final_k = s->draft_k.k();
      }
      publish_blocks(*s);
      const size_t before = events.size();
      for (const SampleResult& sample : out.samples) emit(sample);
      // Blocks reserved only for rejected positions go back to the pool (the next step
      // reserves what it needs); under CP a block table covers shards, left as it is.
      if (config_.cp == 1) cache_.shrink(s->table, static_cast<int64_t>(s->tokens.size()));
      // The counts (and a stop found after the last emitted token) go on the last event.
      if (events.size() > before && events.back().finish == s->finish) {
        events.back().speculative = s->speculative;
      } else if (events.size() > before || s->finish != FinishReason::kNone) {
        ev.finish = s->finish;
        ev.speculative = s->speculative;
        events.push_back(std::move(ev));
      }
      continue;
    }
    publish_blocks(*s);
    if (s->computed == static_cast<int64_t>(s->tokens.size()) && st.n_outputs > 0 && !out.samples.empty()) {
      const size_t before = events.size();
      emit(out.samples.back());
      if (events.size() > before) {  // fold the token into this step's event
        ev.token = events.back().token;
        events.pop_back();
      }
    }
    ev.speculative = s->speculative;
    ev.finish = s->finish;
    if (ev.token || ev.finish != FinishReason::kNone || !ev.prompt_logprobs.empty()) events.push_back(std::move(ev));
  }
  return events;
}

}  // namespace tessera
