// Round trips through real Cap'n Proto bytes (serialize, then read back), every field
// set to a non-default value, plus the validation of what a peer sends.
#include "rpc/step_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/error.h"

namespace tessera::rpc {
namespace {

// Encodes with `encode` into a message, flattens it to bytes, reads them back and
// decodes with `decode`: what the other process would see.
template <typename S, typename Encode, typename Decode>
auto through_bytes(Encode encode, Decode decode) {
  capnp::MallocMessageBuilder builder;
  encode(builder.initRoot<S>());
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1ull << 32;
  capnp::FlatArrayMessageReader reader(words, options);
  return decode(reader.getRoot<S>());
}

StepPlan full_plan() {
  StepPlan p;
  p.step_id = 0x1234'5678'9abc'def0ull;
  SequenceStep a;
  a.seq_id = std::numeric_limits<uint64_t>::max();
  a.tokens = {0, 7, 2147483647, 42};
  a.pos0 = (int64_t{1} << 40) + 3;
  a.block_table = {5, 0, 2000000000};
  a.state_slot = 17;
  a.cross_inputs = {1, 0xffff'ffff'ffffull, 9};
  a.n_outputs = 3;
  a.sampling = {0.7f, 40, 0.95f, SamplerKind::kLlama2c, 5};
  a.rng_state = 0xdead'beef'cafe'f00dull;
  a.return_logits = true;
  SequenceStep v;  // a speculative verify step
  v.seq_id = 12;
  v.tokens = {5, 6, 7, 8};
  v.n_outputs = 4;
  v.draft_tokens = {6, 7, 8};
  v.draft_probs = {0.25f, 0.75f, 1.0f, 0.0f, 0.5f, 0.5f};
  v.sampling.temperature = 0.8f;
  SequenceStep b;  // defaults, but a different sampler
  b.seq_id = 9;
  b.tokens = {1};
  b.sampling.kind = SamplerKind::kStandard;
  b.sampling.n_logprobs = 0;
  p.sequences = {a, b, v};
  p.release = {3, 4, std::numeric_limits<uint64_t>::max()};
  p.state_copies = {{0, 5}, {5, 0}};
  return p;
}

void expect_same(const SamplingParams& x, const SamplingParams& y) {
  EXPECT_EQ(x.temperature, y.temperature);
  EXPECT_EQ(x.top_k, y.top_k);
  EXPECT_EQ(x.top_p, y.top_p);
  EXPECT_EQ(x.kind, y.kind);
  EXPECT_EQ(x.n_logprobs, y.n_logprobs);
}

void expect_same(const StepPlan& x, const StepPlan& y) {
  EXPECT_EQ(x.step_id, y.step_id);
  EXPECT_EQ(x.release, y.release);
  ASSERT_EQ(x.state_copies.size(), y.state_copies.size());
  for (size_t i = 0; i < x.state_copies.size(); ++i) {
    EXPECT_EQ(x.state_copies[i].src, y.state_copies[i].src);
    EXPECT_EQ(x.state_copies[i].dst, y.state_copies[i].dst);
  }
  ASSERT_EQ(x.sequences.size(), y.sequences.size());
  for (size_t i = 0; i < x.sequences.size(); ++i) {
    const SequenceStep &a = x.sequences[i], &b = y.sequences[i];
    EXPECT_EQ(a.seq_id, b.seq_id);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.pos0, b.pos0);
    EXPECT_EQ(a.block_table, b.block_table);
    EXPECT_EQ(a.state_slot, b.state_slot);
    EXPECT_EQ(a.cross_inputs, b.cross_inputs);
    EXPECT_EQ(a.n_outputs, b.n_outputs);
    expect_same(a.sampling, b.sampling);
    EXPECT_EQ(a.rng_state, b.rng_state);
    EXPECT_EQ(a.return_logits, b.return_logits);
    EXPECT_EQ(a.draft_tokens, b.draft_tokens);
    EXPECT_EQ(a.draft_probs, b.draft_probs);
  }
}

void expect_same(const StepResult& x, const StepResult& y) {
  EXPECT_EQ(x.step_id, y.step_id);
  EXPECT_EQ(x.forward_seconds, y.forward_seconds);
  EXPECT_EQ(x.sample_seconds, y.sample_seconds);
  ASSERT_EQ(x.outputs.size(), y.outputs.size());
  for (size_t i = 0; i < x.outputs.size(); ++i) {
    const SequenceOutput &a = x.outputs[i], &b = y.outputs[i];
    EXPECT_EQ(a.seq_id, b.seq_id);
    EXPECT_EQ(a.rng_state, b.rng_state);
    EXPECT_EQ(a.logits, b.logits);
    EXPECT_EQ(a.accepted, b.accepted);
    EXPECT_EQ(a.extra_token, b.extra_token);
    ASSERT_EQ(a.samples.size(), b.samples.size());
    for (size_t j = 0; j < a.samples.size(); ++j) {
      EXPECT_EQ(a.samples[j].token, b.samples[j].token);
      EXPECT_EQ(a.samples[j].logprob, b.samples[j].logprob);
      ASSERT_EQ(a.samples[j].top.size(), b.samples[j].top.size());
      for (size_t k = 0; k < a.samples[j].top.size(); ++k) {
        EXPECT_EQ(a.samples[j].top[k].token, b.samples[j].top[k].token);
        EXPECT_EQ(a.samples[j].top[k].logprob, b.samples[j].top[k].logprob);
      }
    }
  }
}

StepPlan plan_round_trip(const StepPlan& p) {
  return through_bytes<schema::StepPlan>([&](auto b) { to_capnp(p, b); }, [](auto r) { return from_capnp(r); });
}

TEST(StepCodec, PlanRoundTripsEveryField) {
  const StepPlan p = full_plan();
  expect_same(p, plan_round_trip(p));
}

TEST(StepCodec, EmptyPlanRoundTrips) {
  StepPlan p;
  const StepPlan q = plan_round_trip(p);
  EXPECT_TRUE(q.sequences.empty());
  EXPECT_TRUE(q.release.empty());
  EXPECT_EQ(q.step_id, 0u);
}

TEST(StepCodec, DefaultsMatchThePlainStructs) {
  // A peer that leaves a field unset must mean what the C++ default means.
  SequenceStep s;
  s.tokens = {1};
  StepPlan p;
  p.sequences = {s};
  capnp::MallocMessageBuilder builder;
  auto seq = builder.initRoot<schema::StepPlan>().initSequences(1)[0];
  seq.initTokens(1).set(0, 1);
  const SequenceStep d = from_capnp(builder.getRoot<schema::StepPlan>().asReader()).sequences[0];
  EXPECT_EQ(d.state_slot, s.state_slot);
  EXPECT_EQ(d.n_outputs, s.n_outputs);
  EXPECT_EQ(d.return_logits, s.return_logits);
  expect_same(d.sampling, s.sampling);
  EXPECT_TRUE(d.draft_tokens.empty());
  EXPECT_TRUE(d.draft_probs.empty());
}

TEST(StepCodec, LargeBatchRoundTrips) {
  StepPlan p;
  p.step_id = 77;
  for (uint64_t i = 0; i < 1024; ++i) {
    SequenceStep s;
    s.seq_id = i;
    s.tokens = {static_cast<int32_t>(i)};
    s.pos0 = static_cast<int64_t>(i * 13);
    s.block_table.assign(64, static_cast<int32_t>(i));
    p.sequences.push_back(s);
  }
  SequenceStep prefill;
  prefill.seq_id = 5000;
  for (int32_t t = 0; t < 32768; ++t) prefill.tokens.push_back(t % 32000);
  prefill.block_table.resize(2048, 1);
  p.sequences.push_back(prefill);
  expect_same(p, plan_round_trip(p));
}

StepResult full_result() {
  StepResult r;
  r.step_id = 99;
  r.forward_seconds = 0.125;
  r.sample_seconds = 1e-6;
  SequenceOutput o;
  o.seq_id = 3;
  o.rng_state = 0x0123'4567'89ab'cdefull;
  SampleResult s1{11, -0.5f, {{11, -0.5f}, {12, -1.25f}, {0, -7.0f}}};
  SampleResult s2{2147483647, -std::numeric_limits<float>::infinity(), {}};
  o.samples = {s1, s2};
  for (int i = 0; i < 2 * 1000; ++i) o.logits.push_back(static_cast<float>(i) * 0.25f - 3.0f);
  SequenceOutput empty;  // a sequence with n_outputs = 0
  empty.seq_id = 4;
  SequenceOutput verified;  // a verify step: 2 draft tokens accepted, then the extra one
  verified.seq_id = 5;
  verified.accepted = 2;
  verified.extra_token = 300;
  verified.samples = {{6, 0, {}}, {7, 0, {}}, {300, 0, {}}};
  r.outputs = {o, empty, verified};
  return r;
}

TEST(StepCodec, ResultRoundTripsEveryFieldAndTimings) {
  const StepResult r = full_result();
  const StepTimings t{0.5, 0.25, 0.125, 0.0625};
  StepTimings got;
  const StepResult back = through_bytes<schema::StepResult>([&](auto b) { to_capnp(r, t, b); },
                                                            [&](auto rd) { return from_capnp(rd, &got); });
  expect_same(r, back);
  EXPECT_EQ(got.compute_seconds, t.compute_seconds);
  EXPECT_EQ(got.collective_seconds, t.collective_seconds);
  EXPECT_EQ(got.queue_seconds, t.queue_seconds);
  EXPECT_EQ(got.rpc_seconds, t.rpc_seconds);
}

TEST(StepCodec, LoadShardAndStatsRoundTrip) {
  LoadShardRequest q{"/models/gopher-280b", {8, 4, 2, 16}, 123456, 32, 12};
  const LoadShardRequest q2 = through_bytes<schema::LoadShardRequest>([&](auto b) { to_capnp(q, b); },
                                                                      [](auto r) { return from_capnp(r); });
  EXPECT_EQ(q2.model_path, q.model_path);
  EXPECT_EQ(q2.parallel.tp, 8);
  EXPECT_EQ(q2.parallel.pp, 4);
  EXPECT_EQ(q2.parallel.cp, 2);
  EXPECT_EQ(q2.parallel.ep, 16);
  EXPECT_EQ(q2.kv_blocks, q.kv_blocks);
  EXPECT_EQ(q2.kv_block_size, q.kv_block_size);
  EXPECT_EQ(q2.threads, q.threads);

  WorkerStatsValue s{7, "node7.cluster", 1ull << 40, (1ull << 40) + 5, 4096, 1ull << 33, 12.5, 3.25};
  const WorkerStatsValue s2 = through_bytes<schema::WorkerStats>([&](auto b) { to_capnp(s, b); },
                                                                  [](auto r) { return from_capnp(r); });
  EXPECT_EQ(s2.rank, s.rank);
  EXPECT_EQ(s2.host, s.host);
  EXPECT_EQ(s2.weight_bytes, s.weight_bytes);
  EXPECT_EQ(s2.checkpoint_bytes_read, s.checkpoint_bytes_read);
  EXPECT_EQ(s2.kv_blocks, s.kv_blocks);
  EXPECT_EQ(s2.steps_run, s.steps_run);
  EXPECT_EQ(s2.compute_seconds, s.compute_seconds);
  EXPECT_EQ(s2.collective_seconds, s.collective_seconds);
}

// The message of the kInvalidInput error decoding `p` raises ("" if none).
std::string plan_error(const StepPlan& p) {
  try {
    plan_round_trip(p);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    return e.what();
  }
  return "";
}

TEST(StepCodec, RejectsBadPlansNamingTheField) {
  StepPlan p = full_plan();
  p.sequences[1].n_outputs = 2;  // one token
  EXPECT_NE(plan_error(p).find("StepPlan.sequences[1].nOutputs = 2"), std::string::npos) << plan_error(p);

  p = full_plan();
  p.sequences[0].tokens[2] = -4;
  EXPECT_NE(plan_error(p).find("StepPlan.sequences[0].tokens[2] = -4"), std::string::npos) << plan_error(p);

  p = full_plan();
  p.sequences[1].tokens.clear();
  EXPECT_NE(plan_error(p).find("StepPlan.sequences[1].tokens is empty"), std::string::npos) << plan_error(p);

  p = full_plan();
  p.sequences[1].seq_id = p.sequences[0].seq_id;
  EXPECT_NE(plan_error(p).find("appears twice"), std::string::npos) << plan_error(p);

  p = full_plan();
  p.sequences[0].sampling.temperature = std::nanf("");
  EXPECT_NE(plan_error(p).find("StepPlan.sequences[0].sampling.temperature"), std::string::npos) << plan_error(p);

  p = full_plan();
  p.sequences[0].block_table[1] = -1;
  EXPECT_NE(plan_error(p).find("StepPlan.sequences[0].blockTable[1]"), std::string::npos) << plan_error(p);

  p = full_plan();
  p.sequences[0].state_slot = -2;
  EXPECT_NE(plan_error(p).find("stateSlot = -2"), std::string::npos) << plan_error(p);

  p = full_plan();
  p.state_copies[1].dst = -1;
  EXPECT_NE(plan_error(p).find("StepPlan.stateCopies[1] = 5 -> -1"), std::string::npos) << plan_error(p);
}

TEST(StepCodec, RejectsUnknownSamplerKind) {
  capnp::MallocMessageBuilder builder;
  auto seq = builder.initRoot<schema::StepPlan>().initSequences(1)[0];
  seq.initTokens(1).set(0, 1);
  seq.initSampling().setKind(static_cast<schema::SamplerKind>(9));  // from a newer peer
  try {
    from_capnp(builder.getRoot<schema::StepPlan>().asReader());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("StepPlan.sequences[0].sampling.kind = 9"), std::string::npos) << e.what();
  }
}

TEST(StepCodec, RejectsBadLoadShardAndResult) {
  LoadShardRequest q{"/m", {1, 0, 1, 1}, 1, 16, 0};
  try {
    through_bytes<schema::LoadShardRequest>([&](auto b) { to_capnp(q, b); }, [](auto r) { return from_capnp(r); });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LoadShardRequest.parallel.pp = 0"), std::string::npos) << e.what();
  }
  StepResult r = full_result();
  r.outputs[0].logits.pop_back();  // not whole rows
  try {
    through_bytes<schema::StepResult>([&](auto b) { to_capnp(r, {}, b); }, [](auto rd) { return from_capnp(rd); });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("StepResult.outputs[0].logits"), std::string::npos) << e.what();
  }
}

TEST(StepCodec, ResultMustAnswerItsPlan) {
  StepPlan p;
  p.step_id = 99;
  SequenceStep s;
  s.seq_id = 3;
  s.tokens = {1, 2};
  s.n_outputs = 2;
  s.return_logits = true;
  p.sequences = {s};
  StepResult r;
  r.step_id = 99;
  EXPECT_NO_THROW(check_result_matches_plan(p, r));  // not the last stage
  SequenceOutput o;
  o.seq_id = 3;
  o.samples.resize(2);
  o.logits.resize(8);
  r.outputs = {o};
  EXPECT_NO_THROW(check_result_matches_plan(p, r));
  r.outputs[0].samples.resize(1);
  EXPECT_THROW(check_result_matches_plan(p, r), Error);
  r.outputs[0].samples.resize(2);
  r.outputs[0].seq_id = 4;
  EXPECT_THROW(check_result_matches_plan(p, r), Error);
  r.outputs[0].seq_id = 3;
  r.outputs[0].logits.clear();
  EXPECT_THROW(check_result_matches_plan(p, r), Error);
  r.step_id = 98;
  EXPECT_THROW(check_result_matches_plan(p, r), Error);
}

}  // namespace
}  // namespace tessera::rpc

namespace tessera::rpc {
namespace {

TEST(StepCodec, VerifyStepsAreChecked) {
  StepPlan p = full_plan();
  p.sequences[2].draft_tokens[1] = 99;  // not the matching entry of tokens
  EXPECT_NE(plan_error(p).find("StepPlan.sequences[2].draftTokens[1] = 99"), std::string::npos) << plan_error(p);
  p = full_plan();
  p.sequences[2].n_outputs = 2;
  EXPECT_NE(plan_error(p).find("needs 4"), std::string::npos) << plan_error(p);
  p = full_plan();
  p.sequences[2].draft_probs.pop_back();
  EXPECT_NE(plan_error(p).find("draftProbs has 5 values"), std::string::npos) << plan_error(p);
  p = full_plan();
  p.sequences[1].draft_probs = {1.0f};
  EXPECT_NE(plan_error(p).find("draftTokens is empty"), std::string::npos) << plan_error(p);

  // A verify result has accepted + 1 samples.
  StepPlan plan;
  plan.step_id = 1;
  plan.sequences = {full_plan().sequences[2]};
  StepResult r;
  r.step_id = 1;
  SequenceOutput o;
  o.seq_id = plan.sequences[0].seq_id;
  o.accepted = 1;
  o.extra_token = 3;
  o.samples = {{7, 0, {}}, {3, 0, {}}};
  r.outputs = {o};
  EXPECT_NO_THROW(check_result_matches_plan(plan, r));
  r.outputs[0].accepted = 4;  // more than K = 3
  EXPECT_THROW(check_result_matches_plan(plan, r), Error);
  r.outputs[0].accepted = 2;  // then 3 samples are due
  EXPECT_THROW(check_result_matches_plan(plan, r), Error);
}

}  // namespace
}  // namespace tessera::rpc
