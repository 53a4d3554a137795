// Tensor names of the dense decoder in each naming scheme. GGUF names are canonical;
// llama2.c checkpoints are exposed under them by the reader; Hugging Face safetensors
// use transformers' module paths.
#pragma once

#include <cstdint>
#include <string>

namespace tessera {

enum class TensorNaming { kGguf, kHuggingFace };

enum class TensorRole {
  kTokenEmbd, kOutputNorm, kOutput,                       // global
  kAttnNorm, kAttnQ, kAttnK, kAttnV, kAttnOut,            // per layer
  kFfnNorm, kFfnGate, kFfnUp, kFfnDown,
};

std::string tensor_name(TensorNaming naming, TensorRole role, int64_t layer = -1);

}  // namespace tessera
