// The format-independent interface to a checkpoint: tensors by name or in file
// order, and zero-copy views (whole tensor, row range, column range) into the
// memory-mapped files.
//
// Readers (GgufReader, SafetensorsReader, Llama2cReader) derive from Checkpoint,
// parse and validate their headers in the constructor (throwing tessera::Error that
// names the file, the field or tensor, and the byte offset), and register tensors
// with add_tensor(). open_checkpoint() (checkpoint/open.h) picks the reader.
//
// Thread safety: all const methods may be called concurrently; bytes_touched is an
// atomic counter.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "checkpoint/slice.h"
#include "checkpoint/tensor_info.h"
#include "common/mapped_file.h"

namespace tessera::checkpoint {

class Checkpoint {
 public:
  virtual ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  virtual std::string_view format() const = 0;  // "gguf", "safetensors", "llama2c"
  virtual std::string format_version() const = 0;  // "3", "legacy (version 0)", ...
  // Model architecture ("llama") or "" when the checkpoint does not say.
  virtual std::string architecture() const = 0;

  // What was opened: a file, a sharded index, or the name given to a buffer.
  const std::string& path() const { return path_; }
  // Every file that holds tensor data (TensorInfo::file_index indexes this).
  std::vector<std::string> files() const;

  // Tensors in file order (sharded: shard by shard).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  const TensorInfo* find(std::string_view name) const;
  // Throws tessera::Error(kNotFound) naming the tensor and path().
  const TensorInfo& info(std::string_view name) const;

  // The whole tensor's bytes.
  TensorBytes data(std::string_view name) const;
  // Rows [r0, r1) of the outermost dimension (0 <= r0 <= r1 <= shape[0]).
  RowSlice rows(std::string_view name, int64_t r0, int64_t r1) const;
  // Columns [c0, c1) of the innermost dimension of every row (a strided view);
  // c0 and c1 must be multiples of the type's block size.
  ColumnSlice columns(std::string_view name, int64_t c0, int64_t c1) const;

  // Bytes handed out by data()/rows()/columns() since construction or the last reset:
  // a rank that loads 1/N of the weights reports ~total_bytes()/N.
  uint64_t bytes_touched() const { return touched_.load(std::memory_order_relaxed); }
  void reset_bytes_touched() { touched_.store(0, std::memory_order_relaxed); }

  int64_t total_elements() const;
  uint64_t total_bytes() const;

 protected:
  explicit Checkpoint(std::string path) : path_(std::move(path)) {}

  // Registers a data source; returns its file_index. The map (or the caller's buffer
  // for the span overload) must outlive this object.
  uint32_t add_file(std::unique_ptr<MappedFile> file);
  uint32_t add_buffer(std::span<const uint8_t> bytes, std::string name);
  std::span<const uint8_t> file_bytes(uint32_t index) const;
  const std::string& file_name(uint32_t index) const;

  // Adds a validated tensor (offset/size within its file). Throws kInvalidInput when
  // the name is already present, naming both occurrences' offsets.
  void add_tensor(TensorInfo info);

 private:
  struct Source {
    std::string name;
    std::unique_ptr<MappedFile> map;  // null for caller-owned buffers
    const uint8_t* data = nullptr;
    size_t size = 0;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  const uint8_t* pointer(const TensorInfo& t, uint64_t offset_in_tensor) const;
  void touch(uint64_t bytes) const { touched_.fetch_add(bytes, std::memory_order_relaxed); }

  std::string path_;
  std::vector<Source> sources_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t, StringHash, std::equal_to<>> by_name_;
  mutable std::atomic<uint64_t> touched_{0};
};

}  // namespace tessera::checkpoint
