// Writes GGUF v3 (or v2) files: metadata key/values and tensors. Used by tests to
// build inputs (valid and, by patching the bytes, corrupt) and by tools that convert
// checkpoints. Produces the layout GgufReader reads: header, metadata, tensor infos,
// padding to the alignment, tensor data (each tensor padded to the alignment).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/gguf_metadata.h"

namespace tessera::checkpoint {

class GgufWriter {
 public:
  // A non-default alignment is recorded as general.alignment (u32) automatically.
  explicit GgufWriter(uint32_t version = 3, uint64_t alignment = 32);

  void add_u8(std::string_view key, uint8_t v);
  void add_i8(std::string_view key, int8_t v);
  void add_u16(std::string_view key, uint16_t v);
  void add_i16(std::string_view key, int16_t v);
  void add_u32(std::string_view key, uint32_t v);
  void add_i32(std::string_view key, int32_t v);
  void add_u64(std::string_view key, uint64_t v);
  void add_i64(std::string_view key, int64_t v);
  void add_f32(std::string_view key, float v);
  void add_f64(std::string_view key, double v);
  void add_bool(std::string_view key, bool v);
  void add_string(std::string_view key, std::string_view v);
  void add_string_array(std::string_view key, const std::vector<std::string>& v);
  void add_f32_array(std::string_view key, const std::vector<float>& v);
  void add_i32_array(std::string_view key, const std::vector<int32_t>& v);
  // Any value given as its encoding (type id then payload is NOT included: `value`
  // is the payload that follows the u32 type), e.g. nested arrays.
  void add_raw(std::string_view key, GgufType type, std::span<const uint8_t> value);

  // `shape` is row-major, outermost first (written to the file reversed, as ne[]);
  // data.size() must equal the tensor's byte size.
  void add_tensor(std::string_view name, uint32_t ggml_type, std::vector<int64_t> shape,
                  std::span<const uint8_t> data);

  std::vector<uint8_t> bytes() const;
  void write(const std::string& path) const;  // throws naming the path on I/O errors

  // Encoding helpers (also for building nested array payloads).
  static void put_u32(std::vector<uint8_t>& out, uint32_t v);
  static void put_u64(std::vector<uint8_t>& out, uint64_t v);
  static void put_string(std::vector<uint8_t>& out, std::string_view s);

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  void add_kv(std::string_view key, GgufType type, const void* payload, size_t n);

  uint32_t version_;
  uint64_t alignment_;
  uint64_t n_kv_ = 0;
  std::vector<uint8_t> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace tessera::checkpoint
