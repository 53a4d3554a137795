// Plain C++ values (worker/step.h, worker/sampling.h, rpc/executor.h) <-> Cap'n Proto
// builders and readers of schemas/worker.capnp. Encoding is exact for every field.
// Decoding validates what a peer sent (sizes, ranges, enum values) and throws
// tessera::Error(kInvalidInput) naming the field, e.g.
//   "StepPlan.sequences[2].nOutputs = 5 exceeds the 3 tokens of the sequence".
#pragma once

#include "rpc/executor.h"
#include "schemas/worker.capnp.h"
#include "worker/step.h"

namespace tessera::rpc {

void to_capnp(const SamplingParams& v, schema::SamplingParams::Builder b);
void to_capnp(const SampleResult& v, schema::SampleResult::Builder b);
void to_capnp(const SequenceStep& v, schema::SequenceStep::Builder b);
void to_capnp(const StepPlan& v, schema::StepPlan::Builder b);
void to_capnp(const SequenceOutput& v, schema::SequenceOutput::Builder b);
void to_capnp(const StepResult& v, const StepTimings& t, schema::StepResult::Builder b);
void to_capnp(const LoadShardRequest& v, schema::LoadShardRequest::Builder b);
void to_capnp(const WorkerStatsValue& v, schema::WorkerStats::Builder b);

SamplingParams from_capnp(schema::SamplingParams::Reader r);
SampleResult from_capnp(schema::SampleResult::Reader r);
SequenceStep from_capnp(schema::SequenceStep::Reader r);
StepPlan from_capnp(schema::StepPlan::Reader r);
SequenceOutput from_capnp(schema::SequenceOutput::Reader r);
StepResult from_capnp(schema::StepResult::Reader r, StepTimings* timings = nullptr);
LoadShardRequest from_capnp(schema::LoadShardRequest::Reader r);
WorkerStatsValue from_capnp(schema::WorkerStats::Reader r);

// A result that does not answer its plan: outputs must be empty (a worker that is not
// on the last pipeline stage) or match the plan's sequences one for one (seq ids in
// order, n_outputs samples each, n_outputs whole logit rows iff return_logits).
// Throws tessera::Error(kInvalidInput) naming the field; the caller adds who sent it.
void check_result_matches_plan(const StepPlan& plan, const StepResult& result);

}  // namespace tessera::rpc
