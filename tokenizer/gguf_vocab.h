// Tokenizer vocabulary from already-parsed GGUF metadata (for callers that hold a
// checkpoint::GgufReader for the weights: no second parse of the file).
#pragma once

#include "checkpoint/gguf_metadata.h"
#include "tokenizer/vocab.h"

namespace tessera {

// Reads tokenizer.ggml.{model, pre, tokens, scores, token_type, merges,
// bos/eos/unknown/padding/eot/eom_token_id, add_bos_token, add_eos_token,
// add_space_prefix}. model "llama" -> SPM, "gpt2" -> byte-level BPE.
Vocab load_gguf_tokenizer(const checkpoint::GgufMetadata& metadata);

}  // namespace tessera
