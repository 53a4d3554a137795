// Opens a checkpoint, reads its config and binds the weights of a model family to
// views of the mapped tensors (no copies except the small norm vectors).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "model/model.h"
#include "sharding/plan.h"

namespace tessera {

// Owns the checkpoint (whose memory map backs the weights) and the model built on it.
// Member order matters: the model is destroyed before the checkpoint it points into.
struct LoadedModel {
  std::unique_ptr<checkpoint::Checkpoint> checkpoint;
  ModelConfig config;
  ShardPlan plan;  // what this rank owns
  std::vector<std::unique_ptr<uint8_t[]>> owned_weights;  // requantised copies (LoadOptions::int8_copy)
  std::unique_ptr<DecoderModel> model;
  uint64_t weight_bytes = 0;     // bytes of all weights bound
  uint64_t streamed_bytes = 0;   // weight bytes one decode step reads (all but the embedding
                                 // table, of which it reads one row, unless the head is tied)
};

struct LoadOptions {
  // Self-speculation's draft: requantise the dense matrices to Q8_0 copies
  // (model/int8_copy.h).
  bool int8_copy = false;
  // Fixed-state families (RecurrentGemma): per-sequence state slots on this worker.
  int64_t state_slots = 8;
};

// Throws tessera::Error naming the file, the tensor and the expected/actual shape or
// dtype when the checkpoint does not fit the model family.
// `spec` and `comms` select this rank's shard (default: the whole model, no peers).
std::unique_ptr<LoadedModel> load_model(const std::string& path, kernels::ThreadPool& pool,
                                        const ShardSpec& spec = {}, const ModelComms& comms = {},
                                        const LoadOptions& options = {});

// Same, from an already opened checkpoint (tests).
std::unique_ptr<LoadedModel> load_model(std::unique_ptr<checkpoint::Checkpoint> ck, kernels::ThreadPool& pool,
                                        const ShardSpec& spec = {}, const ModelComms& comms = {},
                                        const LoadOptions& options = {});

}  // namespace tessera
