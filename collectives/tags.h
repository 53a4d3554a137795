// Every MPI tag tessera uses, in one enum: the wire protocol is an API.
// Values are never renumbered; new tags take new values.
#pragma once

namespace tessera {

enum class MpiTag : int {
  kPipelineActivations = 100,  // PP: hidden states stage s -> s + 1
  kPipelineResults = 101,      // PP: sampled tokens last stage -> coordinator
  kRingKv = 200,               // CP: KV blocks around the ring
  kExpertDispatch = 300,       // EP: tokens to expert owners (point-to-point fallback)
  kStartup = 900,              // endpoint / secret exchange at start-up
  kTest = 999,
};

}  // namespace tessera
