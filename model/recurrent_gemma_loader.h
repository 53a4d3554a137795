// Loading a RecurrentGemma checkpoint (Hugging Face safetensors + config.json with
// model_type "recurrent_gemma"): the config, this rank's shard plan and the weights it
// owns bound as views (docs/RECURRENT_GEMMA.md). load_model() (model/loader.h)
// dispatches here when is_recurrent_gemma() says so.
#pragma once

#include <memory>

#include "checkpoint/checkpoint.h"
#include "model/loader.h"
#include "model/recurrent_gemma_weights.h"

namespace tessera {

bool is_recurrent_gemma(const checkpoint::Checkpoint& ck);

// Reads the config.json next to the safetensors (throws tessera::Error naming it).
RecurrentGemmaConfig load_recurrent_gemma_config(const checkpoint::Checkpoint& ck);

// Throws tessera::Error naming the file, tensor and expected/actual shape or dtype
// when the checkpoint disagrees with its config, and the reason a split does not fit.
std::unique_ptr<LoadedModel> load_recurrent_gemma(std::unique_ptr<checkpoint::Checkpoint> ck,
                                                  kernels::ThreadPool& pool, const ShardSpec& spec,
                                                  const ModelComms& comms, const LoadOptions& options);

}  // namespace tessera
