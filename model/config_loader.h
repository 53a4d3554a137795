// ModelConfig from what each checkpoint format stores: GGUF metadata (llama.* keys),
// a Hugging Face config.json, or a llama2.c header (plus tensor shapes where the
// format leaves something implicit). Errors name the file and the key.
#pragma once

#include "checkpoint/checkpoint.h"
#include "common/json.h"
#include "model/config.h"

namespace tessera {

// Reads the architecture-specific hyperparameters of any supported checkpoint.
ModelConfig load_model_config(const checkpoint::Checkpoint& ck);

// The individual sources (exposed for tests).
ModelConfig config_from_hf_json(const Json& config, const std::string& source);

}  // namespace tessera
