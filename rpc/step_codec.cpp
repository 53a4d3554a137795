#include "rpc/step_codec.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "common/error.h"

namespace tessera::rpc {

namespace {

using ::tessera::detail::concat;

// Cap'n Proto lists hold at most 2^29 - 1 elements; a bigger vector cannot be encoded.
constexpr size_t kMaxListSize = (size_t{1} << 29) - 1;

unsigned list_size(size_t n, const char* field) {
  TESSERA_REQUIRE(n <= kMaxListSize, ErrorKind::kInvalidInput, field, ": ", n,
                  " elements do not fit in one Cap'n Proto list (max ", kMaxListSize, ")");
  return static_cast<unsigned>(n);
}

template <typename T, typename ListBuilder>
void copy_to(const std::vector<T>& v, ListBuilder b) {
  for (unsigned i = 0; i < v.size(); ++i) b.set(i, v[i]);
}

template <typename T, typename ListReader>
std::vector<T> copy_from(ListReader r) {
  std::vector<T> v;
  v.reserve(r.size());
  for (auto x : r) v.push_back(x);
  return v;
}

schema::SamplerKind kind_to_capnp(SamplerKind k) {
  switch (k) {
    case SamplerKind::kStandard: return schema::SamplerKind::STANDARD;
    case SamplerKind::kLlama2c: return schema::SamplerKind::LLAMA2C;
  }
  TESSERA_FAIL(ErrorKind::kInternal, "unknown SamplerKind ", static_cast<int>(k));
}

SamplingParams decode_sampling(schema::SamplingParams::Reader r, const std::string& path) {
  SamplingParams v;
  v.temperature = r.getTemperature();
  v.top_k = r.getTopK();
  v.top_p = r.getTopP();
  v.n_logprobs = r.getNLogprobs();
  // An enum value from a newer peer arrives as its raw number: refuse it by name.
  const auto kind = r.getKind();
  switch (kind) {
    case schema::SamplerKind::STANDARD: v.kind = SamplerKind::kStandard; break;
    case schema::SamplerKind::LLAMA2C: v.kind = SamplerKind::kLlama2c; break;
    default:
      TESSERA_FAIL(ErrorKind::kInvalidInput, path, ".kind = ", static_cast<int>(kind), " is not a known SamplerKind");
  }
  TESSERA_REQUIRE(std::isfinite(v.temperature) && v.temperature >= 0, ErrorKind::kInvalidInput, path,
                  ".temperature = ", v.temperature, " must be finite and >= 0");
  TESSERA_REQUIRE(v.top_k >= 0, ErrorKind::kInvalidInput, path, ".topK = ", v.top_k, " must be >= 0");
  TESSERA_REQUIRE(std::isfinite(v.top_p), ErrorKind::kInvalidInput, path, ".topP = ", v.top_p, " must be finite");
  TESSERA_REQUIRE(v.n_logprobs >= -1, ErrorKind::kInvalidInput, path, ".nLogprobs = ", v.n_logprobs,
                  " must be >= -1");
  return v;
}

SampleResult decode_sample(schema::SampleResult::Reader r, const std::string& path) {
  SampleResult v;
  v.token = r.getToken();
  v.logprob = r.getLogprob();
  TESSERA_REQUIRE(v.token >= 0, ErrorKind::kInvalidInput, path, ".token = ", v.token, " is negative");
  v.top.reserve(r.getTop().size());
  for (auto t : r.getTop()) v.top.push_back({t.getToken(), t.getLogprob()});
  return v;
}

SequenceStep decode_sequence(schema::SequenceStep::Reader r, const std::string& path) {
  SequenceStep v;
  v.seq_id = r.getSeqId();
  v.tokens = copy_from<int32_t>(r.getTokens());
  v.pos0 = r.getPos0();
  v.block_table = copy_from<int32_t>(r.getBlockTable());
  v.state_slot = r.getStateSlot();
  v.cross_inputs = copy_from<uint64_t>(r.getCrossInputs());
  v.n_outputs = r.getNOutputs();
  v.sampling = decode_sampling(r.getSampling(), path + ".sampling");
  v.rng_state = r.getRngState();
  v.return_logits = r.getReturnLogits();
  v.draft_tokens = copy_from<int32_t>(r.getDraftTokens());
  v.draft_probs = copy_from<float>(r.getDraftProbs());
  v.cp_kv_lens = copy_from<int64_t>(r.getCpKvLens());

  TESSERA_REQUIRE(!v.tokens.empty(), ErrorKind::kInvalidInput, path, ".tokens is empty (seqId ", v.seq_id, ")");
  for (size_t i = 0; i < v.tokens.size(); ++i)
    TESSERA_REQUIRE(v.tokens[i] >= 0, ErrorKind::kInvalidInput, path, ".tokens[", i, "] = ", v.tokens[i],
                    " is negative");
  TESSERA_REQUIRE(v.pos0 >= 0, ErrorKind::kInvalidInput, path, ".pos0 = ", v.pos0, " is negative");
  for (size_t i = 0; i < v.block_table.size(); ++i)
    TESSERA_REQUIRE(v.block_table[i] >= 0, ErrorKind::kInvalidInput, path, ".blockTable[", i,
                    "] = ", v.block_table[i], " is negative");
  for (size_t i = 0; i < v.cp_kv_lens.size(); ++i)
    TESSERA_REQUIRE(v.cp_kv_lens[i] >= 0, ErrorKind::kInvalidInput, path, ".cpKvLens[", i, "] = ", v.cp_kv_lens[i],
                    " is negative");
  TESSERA_REQUIRE(v.state_slot >= -1, ErrorKind::kInvalidInput, path, ".stateSlot = ", v.state_slot,
                  " must be >= -1");
  TESSERA_REQUIRE(v.n_outputs >= 0 && static_cast<size_t>(v.n_outputs) <= v.tokens.size(),
                  ErrorKind::kInvalidInput, path, ".nOutputs = ", v.n_outputs, " is outside [0, ",
                  v.tokens.size(), "] (the tokens of the sequence)");
  if (!v.draft_tokens.empty()) {
    const size_t k = v.draft_tokens.size();
    TESSERA_REQUIRE(static_cast<size_t>(v.n_outputs) == k + 1, ErrorKind::kInvalidInput, path, ".nOutputs = ",
                    v.n_outputs, " but a verify step of ", k, " draft tokens needs ", k + 1);
    for (size_t i = 0; i < k; ++i)
      TESSERA_REQUIRE(v.draft_tokens[i] == v.tokens[v.tokens.size() - k + i], ErrorKind::kInvalidInput, path,
                      ".draftTokens[", i, "] = ", v.draft_tokens[i], " is not the matching entry of tokens");
    TESSERA_REQUIRE(v.draft_probs.empty() || v.draft_probs.size() % k == 0, ErrorKind::kInvalidInput, path,
                    ".draftProbs has ", v.draft_probs.size(), " values, not ", k, " whole rows");
  } else {
    TESSERA_REQUIRE(v.draft_probs.empty(), ErrorKind::kInvalidInput, path,
                    ".draftProbs is set but draftTokens is empty");
  }
  return v;
}

SequenceOutput decode_output(schema::SequenceOutput::Reader r, const std::string& path) {
  SequenceOutput v;
  v.seq_id = r.getSeqId();
  v.samples.reserve(r.getSamples().size());
  unsigned i = 0;
  for (auto s : r.getSamples()) v.samples.push_back(decode_sample(s, concat(path, ".samples[", i++, "]")));
  v.rng_state = r.getRngState();
  v.logits = copy_from<float>(r.getLogits());
  v.accepted = r.getAccepted();
  v.extra_token = r.getExtraToken();
  TESSERA_REQUIRE(v.accepted >= -1, ErrorKind::kInvalidInput, path, ".accepted = ", v.accepted, " must be >= -1");
  // Logits are whole rows, one per sample.
  TESSERA_REQUIRE(v.logits.empty() || v.accepted >= 0 ||
                      (!v.samples.empty() && v.logits.size() % v.samples.size() == 0),
                  ErrorKind::kInvalidInput, path, ".logits has ", v.logits.size(),
                  " values, not a whole number of rows for ", v.samples.size(), " samples");
  return v;
}

}  // namespace

// ---- encode ----

void to_capnp(const SamplingParams& v, schema::SamplingParams::Builder b) {
  b.setTemperature(v.temperature);
  b.setTopK(v.top_k);
  b.setTopP(v.top_p);
  b.setKind(kind_to_capnp(v.kind));
  b.setNLogprobs(v.n_logprobs);
}

void to_capnp(const SampleResult& v, schema::SampleResult::Builder b) {
  b.setToken(v.token);
  b.setLogprob(v.logprob);
  auto top = b.initTop(list_size(v.top.size(), "SampleResult.top"));
  for (unsigned i = 0; i < v.top.size(); ++i) {
    top[i].setToken(v.top[i].token);
    top[i].setLogprob(v.top[i].logprob);
  }
}

void to_capnp(const SequenceStep& v, schema::SequenceStep::Builder b) {
  b.setSeqId(v.seq_id);
  copy_to(v.tokens, b.initTokens(list_size(v.tokens.size(), "SequenceStep.tokens")));
  b.setPos0(v.pos0);
  copy_to(v.block_table, b.initBlockTable(list_size(v.block_table.size(), "SequenceStep.blockTable")));
  b.setStateSlot(v.state_slot);
  copy_to(v.cross_inputs, b.initCrossInputs(list_size(v.cross_inputs.size(), "SequenceStep.crossInputs")));
  b.setNOutputs(v.n_outputs);
  to_capnp(v.sampling, b.initSampling());
  b.setRngState(v.rng_state);
  b.setReturnLogits(v.return_logits);
  copy_to(v.draft_tokens, b.initDraftTokens(list_size(v.draft_tokens.size(), "SequenceStep.draftTokens")));
  copy_to(v.draft_probs, b.initDraftProbs(list_size(v.draft_probs.size(), "SequenceStep.draftProbs")));
  copy_to(v.cp_kv_lens, b.initCpKvLens(list_size(v.cp_kv_lens.size(), "SequenceStep.cpKvLens")));
}

void to_capnp(const StepPlan& v, schema::StepPlan::Builder b) {
  b.setStepId(v.step_id);
  auto seqs = b.initSequences(list_size(v.sequences.size(), "StepPlan.sequences"));
  for (unsigned i = 0; i < v.sequences.size(); ++i) to_capnp(v.sequences[i], seqs[i]);
  copy_to(v.release, b.initRelease(list_size(v.release.size(), "StepPlan.release")));
  auto copies = b.initStateCopies(list_size(v.state_copies.size(), "StepPlan.stateCopies"));
  for (unsigned i = 0; i < v.state_copies.size(); ++i) {
    copies[i].setSrc(v.state_copies[i].src);
    copies[i].setDst(v.state_copies[i].dst);
  }
}

void to_capnp(const SequenceOutput& v, schema::SequenceOutput::Builder b) {
  b.setSeqId(v.seq_id);
  auto samples = b.initSamples(list_size(v.samples.size(), "SequenceOutput.samples"));
  for (unsigned i = 0; i < v.samples.size(); ++i) to_capnp(v.samples[i], samples[i]);
  b.setRngState(v.rng_state);
  // TODO(perf): a vocab-sized row per output is copied element by element.
  copy_to(v.logits, b.initLogits(list_size(v.logits.size(), "SequenceOutput.logits")));
  b.setAccepted(v.accepted);
  b.setExtraToken(v.extra_token);
}

void to_capnp(const StepResult& v, const StepTimings& t, schema::StepResult::Builder b) {
  b.setStepId(v.step_id);
  auto outs = b.initOutputs(list_size(v.outputs.size(), "StepResult.outputs"));
  for (unsigned i = 0; i < v.outputs.size(); ++i) to_capnp(v.outputs[i], outs[i]);
  b.setForwardSeconds(v.forward_seconds);
  b.setSampleSeconds(v.sample_seconds);
  auto tb = b.initTimings();
  tb.setComputeSeconds(t.compute_seconds);
  tb.setCollectiveSeconds(t.collective_seconds);
  tb.setQueueSeconds(t.queue_seconds);
  tb.setRpcSeconds(t.rpc_seconds);
}

void to_capnp(const LoadShardRequest& v, schema::LoadShardRequest::Builder b) {
  b.setModelPath(v.model_path);
  auto p = b.initParallel();
  p.setTp(v.parallel.tp);
  p.setPp(v.parallel.pp);
  p.setCp(v.parallel.cp);
  p.setEp(v.parallel.ep);
  b.setKvBlocks(v.kv_blocks);
  b.setKvBlockSize(v.kv_block_size);
  b.setThreads(v.threads);
}

void to_capnp(const WorkerStatsValue& v, schema::WorkerStats::Builder b) {
  b.setRank(v.rank);
  b.setHost(v.host);
  b.setWeightBytes(v.weight_bytes);
  b.setCheckpointBytesRead(v.checkpoint_bytes_read);
  b.setKvBlocks(v.kv_blocks);
  b.setStepsRun(v.steps_run);
  b.setComputeSeconds(v.compute_seconds);
  b.setCollectiveSeconds(v.collective_seconds);
  b.setMoeLayerBegin(v.moe_layer_begin);
  b.setMoeExperts(v.moe_experts);
  auto moe = b.initMoeTokens(static_cast<unsigned>(v.moe_tokens.size()));
  for (unsigned i = 0; i < v.moe_tokens.size(); ++i) moe.set(i, v.moe_tokens[i]);
}

// ---- decode ----

SamplingParams from_capnp(schema::SamplingParams::Reader r) { return decode_sampling(r, "SamplingParams"); }
SampleResult from_capnp(schema::SampleResult::Reader r) { return decode_sample(r, "SampleResult"); }
SequenceStep from_capnp(schema::SequenceStep::Reader r) { return decode_sequence(r, "SequenceStep"); }
SequenceOutput from_capnp(schema::SequenceOutput::Reader r) { return decode_output(r, "SequenceOutput"); }

StepPlan from_capnp(schema::StepPlan::Reader r) {
  StepPlan v;
  v.step_id = r.getStepId();
  v.sequences.reserve(r.getSequences().size());
  std::unordered_set<uint64_t> seen;
  unsigned i = 0;
  for (auto s : r.getSequences()) {
    const std::string path = concat("StepPlan.sequences[", i++, "]");
    v.sequences.push_back(decode_sequence(s, path));
    // Two slices of one sequence in a step would race on its KV blocks.
    TESSERA_REQUIRE(seen.insert(v.sequences.back().seq_id).second, ErrorKind::kInvalidInput, path,
                    ".seqId = ", v.sequences.back().seq_id, " appears twice in step ", v.step_id);
  }
  v.release = copy_from<uint64_t>(r.getRelease());
  i = 0;
  for (auto c : r.getStateCopies()) {
    TESSERA_REQUIRE(c.getSrc() >= 0 && c.getDst() >= 0, ErrorKind::kInvalidInput, "StepPlan.stateCopies[", i,
                    "] = ", c.getSrc(), " -> ", c.getDst(), ": slots must be >= 0");
    v.state_copies.push_back({c.getSrc(), c.getDst()});
    ++i;
  }
  return v;
}

StepResult from_capnp(schema::StepResult::Reader r, StepTimings* timings) {
  StepResult v;
  v.step_id = r.getStepId();
  v.outputs.reserve(r.getOutputs().size());
  unsigned i = 0;
  for (auto o : r.getOutputs()) v.outputs.push_back(decode_output(o, concat("StepResult.outputs[", i++, "]")));
  v.forward_seconds = r.getForwardSeconds();
  v.sample_seconds = r.getSampleSeconds();
  if (timings != nullptr) {
    auto t = r.getTimings();
    timings->compute_seconds = t.getComputeSeconds();
    timings->collective_seconds = t.getCollectiveSeconds();
    timings->queue_seconds = t.getQueueSeconds();
    timings->rpc_seconds = t.getRpcSeconds();
  }
  return v;
}

LoadShardRequest from_capnp(schema::LoadShardRequest::Reader r) {
  LoadShardRequest v;
  v.model_path = r.getModelPath();
  auto p = r.getParallel();
  v.parallel = {p.getTp(), p.getPp(), p.getCp(), p.getEp()};
  v.kv_blocks = r.getKvBlocks();
  v.kv_block_size = r.getKvBlockSize();
  v.threads = r.getThreads();
  TESSERA_REQUIRE(!v.model_path.empty(), ErrorKind::kInvalidInput, "LoadShardRequest.modelPath is empty");
  const std::pair<const char*, int32_t> degrees[] = {
      {"tp", v.parallel.tp}, {"pp", v.parallel.pp}, {"cp", v.parallel.cp}, {"ep", v.parallel.ep}};
  for (const auto& [name, d] : degrees)
    TESSERA_REQUIRE(d >= 1, ErrorKind::kInvalidInput, "LoadShardRequest.parallel.", name, " = ", d, " must be >= 1");
  TESSERA_REQUIRE(v.kv_blocks >= 0, ErrorKind::kInvalidInput, "LoadShardRequest.kvBlocks = ", v.kv_blocks,
                  " is negative");
  TESSERA_REQUIRE(v.kv_block_size >= 1, ErrorKind::kInvalidInput, "LoadShardRequest.kvBlockSize = ",
                  v.kv_block_size, " must be >= 1");
  TESSERA_REQUIRE(v.threads >= 0, ErrorKind::kInvalidInput, "LoadShardRequest.threads = ", v.threads,
                  " is negative");
  return v;
}

WorkerStatsValue from_capnp(schema::WorkerStats::Reader r) {
  WorkerStatsValue v;
  v.rank = r.getRank();
  v.host = r.getHost();
  v.weight_bytes = r.getWeightBytes();
  v.checkpoint_bytes_read = r.getCheckpointBytesRead();
  v.kv_blocks = r.getKvBlocks();
  v.steps_run = r.getStepsRun();
  v.compute_seconds = r.getComputeSeconds();
  v.collective_seconds = r.getCollectiveSeconds();
  v.moe_layer_begin = r.getMoeLayerBegin();
  v.moe_experts = r.getMoeExperts();
  for (const int64_t n : r.getMoeTokens()) v.moe_tokens.push_back(n);
  TESSERA_REQUIRE(v.moe_experts >= 0 && v.moe_layer_begin >= 0 &&
                      (v.moe_experts == 0 ? v.moe_tokens.empty() : v.moe_tokens.size() % v.moe_experts == 0),
                  ErrorKind::kInvalidInput, "WorkerStats: ", v.moe_tokens.size(), " MoE counts do not fill layers of ",
                  v.moe_experts, " experts");
  return v;
}

void check_result_matches_plan(const StepPlan& plan, const StepResult& result) {
  TESSERA_REQUIRE(result.step_id == plan.step_id, ErrorKind::kInvalidInput, "StepResult.stepId = ",
                  result.step_id, " answers a different step than ", plan.step_id);
  if (result.outputs.empty()) return;  // not the last pipeline stage
  TESSERA_REQUIRE(result.outputs.size() == plan.sequences.size(), ErrorKind::kInvalidInput,
                  "StepResult.outputs has ", result.outputs.size(), " entries for ", plan.sequences.size(),
                  " planned sequences");
  for (size_t i = 0; i < plan.sequences.size(); ++i) {
    const SequenceStep& s = plan.sequences[i];
    const SequenceOutput& o = result.outputs[i];
    TESSERA_REQUIRE(o.seq_id == s.seq_id, ErrorKind::kInvalidInput, "StepResult.outputs[", i,
                    "].seqId = ", o.seq_id, ", the plan has ", s.seq_id, " there");
    // A verify step reports the accepted draft tokens and the extra one.
    const size_t want_samples = s.draft_tokens.empty() ? static_cast<size_t>(s.n_outputs)
                                                      : static_cast<size_t>(std::max(o.accepted, 0) + 1);
    TESSERA_REQUIRE(s.draft_tokens.empty() || (o.accepted >= 0 && o.accepted <= static_cast<int32_t>(s.draft_tokens.size())),
                    ErrorKind::kInvalidInput, "StepResult.outputs[", i, "].accepted = ", o.accepted, " for ",
                    s.draft_tokens.size(), " draft tokens");
    TESSERA_REQUIRE(o.samples.size() == want_samples, ErrorKind::kInvalidInput,
                    "StepResult.outputs[", i, "].samples has ", o.samples.size(), " entries, nOutputs = ",
                    s.n_outputs);
    TESSERA_REQUIRE(s.return_logits == !o.logits.empty() || s.n_outputs == 0, ErrorKind::kInvalidInput,
                    "StepResult.outputs[", i, "].logits ", o.logits.empty() ? "missing" : "present",
                    " but returnLogits = ", s.return_logits ? "true" : "false");
  }
}

}  // namespace tessera::rpc
