// GGUF metadata: the typed key/value pairs of a GGUF header, with typed getters.
//
// Values are views into the mapped file (strings and arrays are not copied at parse
// time; the header is walked once to validate and find its end). Array getters
// decode straight from the file bytes, so a 150k-entry tokenizer.ggml.tokens array is
// one pass with one allocation per string, no intermediate DOM.
//
// Getters throw tessera::Error naming the file, the key, the expected and actual type
// (kNotFound when the key is absent, kInvalidInput on a type or range mismatch).
// Integer getters accept any integer type whose value fits (converters disagree on
// u32 vs i32 for e.g. token ids); float getters accept F32 or F64.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tessera::checkpoint {

class ByteReader;

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6,
  kBool = 7, kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "u32", "string", "array", ...

struct GgufValue {
  GgufType type = GgufType::kU8;
  uint64_t offset = 0;  // byte offset of the value in the file
  // Scalars: unsigned integers and bool in u, signed integers in i, floats in f.
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string_view str;  // kString: a view into the file
  // kArray: element type and count; raw = the encoded elements (for strings and
  // nested arrays including their length / type prefixes).
  GgufType elem_type = GgufType::kU8;
  uint64_t count = 0;
  std::span<const uint8_t> raw;

  bool is_integer() const;
  std::string type_string() const;  // "u32", "array<string>[512]"
};

class GgufMetadata {
 public:
  using Entry = std::pair<std::string_view, GgufValue>;

  explicit GgufMetadata(std::string file = "") : file_(std::move(file)) {}

  // Parses `count` key/value pairs at the reader's position (GGUF v2/v3 encoding).
  // Throws naming the file, the key (when known) and the byte offset.
  void parse(ByteReader& in, uint64_t count);

  const std::vector<Entry>& entries() const { return entries_; }  // file order
  size_t size() const { return entries_.size(); }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const;
  const GgufValue& at(std::string_view key) const;  // throws kNotFound

  uint32_t get_u32(std::string_view key) const;
  int32_t get_i32(std::string_view key) const;
  uint64_t get_u64(std::string_view key) const;
  int64_t get_i64(std::string_view key) const;
  float get_f32(std::string_view key) const;
  double get_f64(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::string get_string(std::string_view key) const;

  // Empty when the key is absent; still throws when present with the wrong type.
  std::optional<uint32_t> opt_u32(std::string_view key) const;
  std::optional<int32_t> opt_i32(std::string_view key) const;
  std::optional<uint64_t> opt_u64(std::string_view key) const;
  std::optional<int64_t> opt_i64(std::string_view key) const;
  std::optional<float> opt_f32(std::string_view key) const;
  std::optional<bool> opt_bool(std::string_view key) const;
  std::optional<std::string> opt_string(std::string_view key) const;

  // Arrays. get_f32_array accepts F32 or F64 elements; get_i32_array any integer
  // elements that fit in int32.
  uint64_t array_size(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_f32_array(std::string_view key) const;
  std::vector<int32_t> get_i32_array(std::string_view key) const;

  // The first `limit` elements of an array value as values (works for nested arrays).
  std::vector<GgufValue> elements(const GgufValue& array, uint64_t limit) const;

  const std::string& file() const { return file_; }

 private:
  const GgufValue& require(std::string_view key, bool ok, const GgufValue& v,
                           std::string_view expected) const;
  const GgufValue& array_of(std::string_view key, std::string_view expected) const;

  std::string file_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string_view, size_t> by_key_;
};

}  // namespace tessera::checkpoint
