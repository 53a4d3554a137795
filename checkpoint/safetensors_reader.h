// Hugging Face safetensors checkpoints: one file, or a sharded set described by
// model.safetensors.index.json; plus the config.json next to them.
//
// File layout: u64 little-endian header length N, N bytes of JSON, tensor data.
// The JSON maps tensor names to {"dtype": "F16", "shape": [out, in],
// "data_offsets": [begin, end]} (offsets relative to the byte after the header) and
// may hold "__metadata__": {string: string}. Shapes are row-major, outermost first.
//
// Validation: the header fits in the file (and is at most 100 MB), every entry has a
// known dtype, at most 8 dims, a shape whose product does not overflow, begin <= end
// inside the data section, end - begin == product(shape) * dtype size, tensors do not
// overlap, and each tensor's absolute file offset is a multiple of its element size
// (so a mapped F32 tensor can be read as float*). Tensors are listed in data order.
// Sharded: every file the index names must exist and hold the tensors the index
// assigns to it; a tensor may appear in only one shard.
//
// Dtypes F32, F16, BF16 (and I32) map to DType; F64, I64, I16, I8, U8, U16, U32, U64,
// BOOL, F8_E4M3, F8_E5M2 are listed but TensorInfo::dtype() throws kUnsupported.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "common/json.h"

namespace tessera::checkpoint {

constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;  // as the reference implementation
constexpr size_t kSafetensorsMaxDims = 8;

class SafetensorsReader : public Checkpoint {
 public:
  // `path`: a .safetensors file or a *.index.json of a sharded checkpoint. Reads
  // config.json from the same directory when it exists.
  explicit SafetensorsReader(const std::string& path);
  // One caller-owned safetensors file image (tests, fuzzing); no config.json.
  SafetensorsReader(std::span<const uint8_t> bytes, std::string name);

  std::string_view format() const override { return "safetensors"; }
  std::string format_version() const override;
  // config.json model_type, else architectures[0], else "".
  std::string architecture() const override;

  bool sharded() const { return sharded_; }
  // config.json, or nullptr when there is none.
  const Json* config() const { return has_config_ ? &config_ : nullptr; }
  // __metadata__ entries of every file (shard order; a key repeated in later shards
  // keeps its first value), plus the index's "metadata" entries when sharded.
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }

 private:
  std::vector<TensorInfo> parse_file(uint32_t file_index);
  void open_index(const std::string& index_path);
  void read_config(const std::string& dir);
  void add_metadata(std::string key, std::string value);

  bool sharded_ = false;
  bool has_config_ = false;
  Json config_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

}  // namespace tessera::checkpoint
