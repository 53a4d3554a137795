# The control plane between the coordinator (rank 0) and every worker rank.
#
# docs/CONTROL_PLANE.md is the guide; the rules in short:
#  - Ordinals (@N) are never renumbered, reused or retyped. A new field takes the next
#    ordinal and a default that means "old behaviour", so an old peer that does not
#    set it is understood correctly.
#  - A change an old peer would misread (a new meaning for an existing field, a
#    removed method) bumps kProtocolVersion in rpc/protocol.h; Gate.hello refuses
#    peers that speak another version.
#  - The structs mirror the plain C++ values of worker/step.h and worker/sampling.h
#    field for field; rpc/step_codec.cpp converts, and its tests cover every field.

@0xbcf9077757189824;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::schema");

# ---- sampling (worker/sampling.h) ----

enum SamplerKind {
  standard @0;   # llama.cpp / vLLM order: top-k, temperature, softmax, top-p
  llama2c @1;    # llama2.c run.c's sampler, byte-exact
}

struct SamplingParams {
  temperature @0 :Float32 = 0.0;   # 0: greedy
  topK @1 :Int32 = 0;              # 0: off
  topP @2 :Float32 = 1.0;          # >= 1 or <= 0: off
  kind @3 :SamplerKind = standard;
  nLogprobs @4 :Int32 = -1;        # < 0: none; 0: the sampled token's; n > 0: also top n
}

struct TokenLogprob {
  token @0 :Int32;
  logprob @1 :Float32;
}

struct SampleResult {
  token @0 :Int32;
  logprob @1 :Float32;             # log p(token) at temperature 1, when asked
  top @2 :List(TokenLogprob);      # n_logprobs most likely tokens, descending
}

# ---- the step (worker/step.h) ----

struct SequenceStep {
  seqId @0 :UInt64;
  tokens @1 :List(Int32);          # new tokens at positions pos0 .. pos0 + n - 1
  pos0 @2 :Int64;
  blockTable @3 :List(Int32);      # KV block ids covering [0, pos0 + n)
  stateSlot @4 :Int32 = -1;        # recurrent-state slot; -1: none
  crossInputs @5 :List(UInt64);    # handles of encoded cross-attention inputs
  nOutputs @6 :Int32 = 1;          # sample the last nOutputs positions (<= tokens)
  sampling @7 :SamplingParams;
  rngState @8 :UInt64;             # advanced by sampling, returned in the output
  returnLogits @9 :Bool = false;   # send back the nOutputs full logit rows
  draftTokens @10 :List(Int32);    # speculative verify: the K proposed tokens (the
                                   # last K of tokens); empty: an ordinary step
  draftProbs @11 :List(Float32);   # the draft's q, [K][vocab]; empty: one-hot (deterministic draft)
  cpKvLens @12 :List(Int64);       # context parallel: KV entries per CP rank before the step; empty: no CP
}

struct StepPlan {
  stepId @0 :UInt64;
  sequences @1 :List(SequenceStep);
  release @2 :List(UInt64);        # sequences finished since the last step
  stateCopies @3 :List(StateCopy); # fixed-state models: slot copies before the forward
}

struct StateCopy {
  src @0 :Int32;
  dst @1 :Int32;
}

struct SequenceOutput {
  seqId @0 :UInt64;
  samples @1 :List(SampleResult);  # one per output position
  rngState @2 :UInt64;
  logits @3 :List(Float32);        # [nOutputs][vocab] when returnLogits, else empty
  accepted @4 :Int32 = -1;         # verify steps: draft tokens accepted (0..K); -1: not a verify step
  extraToken @5 :Int32 = -1;       # verify steps: the token sampled after the accepted ones
}

# Where the time of one step went, as the worker measured it (plus rpcSeconds, which
# only the coordinator can measure: see below).
struct StepTimings {
  computeSeconds @0 :Float64;      # executor run_step wall time on the compute thread
  collectiveSeconds @1 :Float64;   # part of computeSeconds spent in data-plane collectives
  queueSeconds @2 :Float64;        # waiting behind earlier work on the compute thread
  rpcSeconds @3 :Float64;          # filled by the coordinator on receipt (round trip
                                   # minus queue and compute); a worker sends 0
}

struct StepResult {
  stepId @0 :UInt64;
  outputs @1 :List(SequenceOutput);  # in plan order (last pipeline stage; else empty)
  forwardSeconds @2 :Float64;        # mirrors worker/step.h
  sampleSeconds @3 :Float64;
  timings @4 :StepTimings;
}

# ---- loading and stats ----

struct ParallelConfig {
  tp @0 :Int32 = 1;
  pp @1 :Int32 = 1;
  cp @2 :Int32 = 1;
  ep @3 :Int32 = 1;
}

struct LoadShardRequest {
  modelPath @0 :Text;              # as seen by the worker's host
  parallel @1 :ParallelConfig;
  kvBlocks @2 :Int32;              # blocks in this worker's KV pool
  kvBlockSize @3 :Int32 = 16;      # tokens per block
  threads @4 :Int32;               # kernel threads; 0: the worker decides
}

struct WorkerStats {
  rank @0 :Int32;
  host @1 :Text;
  weightBytes @2 :UInt64;          # resident weights of this shard
  checkpointBytesRead @3 :UInt64;  # bytes read from the checkpoint files
  kvBlocks @4 :Int32;
  stepsRun @5 :UInt64;
  computeSeconds @6 :Float64;      # cumulative
  collectiveSeconds @7 :Float64;   # cumulative
  moeLayerBegin @8 :Int32;         # MoE: first layer of moeTokens
  moeExperts @9 :Int32;            # MoE: experts per layer (0: dense)
  moeTokens @10 :List(Int64);      # MoE: [layer][expert] (token, expert) pairs routed here, cumulative
}

# ---- capabilities ----

# The bootstrap capability: the only thing a fresh connection can reach. A peer that
# does not present the job's secret, or speaks another protocol version, gets an
# exception and never a Worker.
interface Gate {
  hello @0 (protocolVersion :UInt32, secret :Data, planFingerprint :UInt64)
        -> (worker :Worker, rank :Int32, host :Text, protocolVersion :UInt32);
  # planFingerprint: a hash of the parallel plan the coordinator computed; 0 means
  # "not checked". A worker started with a non-zero fingerprint refuses another one.
}

# One worker rank. Every call runs on the worker's compute thread in arrival order.
interface Worker {
  loadShard @0 (request :LoadShardRequest) -> (stats :WorkerStats);
  runStep @1 (plan :StepPlan) -> (result :StepResult);
  release @2 (seqIds :List(UInt64)) -> ();
  stats @3 () -> (stats :WorkerStats);
  shutdown @4 () -> ();            # after earlier calls finish; then the server stops
}
