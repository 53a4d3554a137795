// GGUF (llama.cpp / ggml) checkpoints, versions 2 and 3.
//
// Layout (all little-endian): "GGUF" magic, u32 version, u64 tensor count, u64
// metadata count, metadata key/value pairs, tensor infos (name, u32 n_dims,
// u64 ne[n_dims] innermost first, u32 ggml type, u64 offset relative to the data
// section), padding to general.alignment (default 32), tensor data.
//
// Shapes: TensorInfo::shape is ne REVERSED (outermost first), so a GGUF matrix with
// ne = {n_embd, n_vocab} is exposed as shape {n_vocab, n_embd}: row r is the r-th
// contiguous run of n_embd elements, exactly as in the safetensors / PyTorch layout.
//
// Version 1 (32-bit counts, 2023) is rejected with kUnsupported. Every tensor type
// ggml defines is listed and its size validated (checkpoint/ggml_types.h); only
// F32/F16/BF16/Q8_0/Q4_0/Q4_1 (and I32) have a DType.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "checkpoint/checkpoint.h"
#include "checkpoint/gguf_metadata.h"

namespace tessera::checkpoint {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kGgufDefaultAlignment = 32;
constexpr uint32_t kGgufMaxDims = 4;          // GGML_MAX_DIMS

class GgufReader : public Checkpoint {
 public:
  // Maps and parses the file. Throws tessera::Error naming the path, the field or
  // tensor, and the byte offset of the problem.
  explicit GgufReader(const std::string& path);
  // Parses a caller-owned buffer (tests, fuzzing); `name` stands for the path in
  // errors. The buffer must outlive the reader.
  GgufReader(std::span<const uint8_t> bytes, std::string name);

  std::string_view format() const override { return "gguf"; }
  std::string format_version() const override { return std::to_string(version_); }
  std::string architecture() const override;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute start of tensor data
  const GgufMetadata& metadata() const { return metadata_; }

 private:
  void parse(uint32_t file_index);

  GgufMetadata metadata_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
};

}  // namespace tessera::checkpoint
