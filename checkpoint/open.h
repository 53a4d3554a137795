// Opening a checkpoint by path, whatever its format.
#pragma once

#include <memory>
#include <string>

#include "checkpoint/checkpoint.h"

namespace tessera::checkpoint {

// Detects the format and returns the matching reader:
//  - a directory: model.safetensors.index.json, else model.safetensors, else the only
//    *.safetensors file, else the only *.gguf file, else the only *.bin file;
//  - a file starting with "GGUF": GgufReader; with "ak42": Llama2cReader (version 1);
//  - *.safetensors or *.safetensors.index.json (or *.index.json): SafetensorsReader;
//  - a file whose first 8 bytes are a plausible safetensors header length followed by
//    '{': SafetensorsReader;
//  - *.bin (anything else): Llama2cReader, legacy header.
// Throws tessera::Error naming the path when nothing matches.
std::unique_ptr<Checkpoint> open_checkpoint(const std::string& path);

}  // namespace tessera::checkpoint
