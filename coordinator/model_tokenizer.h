// Finds and loads the tokenizer that belongs to a model: the GGUF's own metadata, a
// llama2.c tok*.bin next to the .bin, or tokenizer.json / tokenizer.model in a
// Hugging Face directory. An explicit path always wins.
#pragma once

#include <memory>
#include <string>

#include "checkpoint/checkpoint.h"
#include "tokenizer/tokenizer.h"

namespace tessera {

// Throws tessera::Error(kNotFound) listing the places it looked.
std::unique_ptr<Tokenizer> load_model_tokenizer(const std::string& model_path, const checkpoint::Checkpoint& ck,
                                                const std::string& explicit_path);

}  // namespace tessera
