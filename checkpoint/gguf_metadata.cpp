#include "checkpoint/gguf_metadata.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "checkpoint/byte_reader.h"
#include "common/error.h"

namespace tessera::checkpoint {

namespace {

// Nested arrays are legal GGUF but nobody nests deeply; the limit keeps the parser's
// recursion bounded on hostile input.
constexpr int kMaxArrayDepth = 8;

bool is_valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kF64); }

// Encoded bytes of one element; 0 for variable-size types (string, array).
uint64_t fixed_size(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    case GgufType::kString: case GgufType::kArray: return 0;
  }
  return 0;
}

// Smallest encoding of one element: a string is at least its u64 length, an array at
// least its u32 type and u64 count. Used to bound counts by the bytes left.
uint64_t min_size(GgufType t) {
  if (t == GgufType::kString) return 8;
  if (t == GgufType::kArray) return 12;
  return fixed_size(t);
}

GgufValue read_value(ByteReader& in, GgufType type, std::string_view key, int depth) {
  GgufValue v;
  v.type = type;
  v.offset = in.offset();
  switch (type) {
    case GgufType::kU8: v.u = in.read<uint8_t>("a u8 value"); break;
    case GgufType::kI8: v.i = in.read<int8_t>("an i8 value"); break;
    case GgufType::kU16: v.u = in.read<uint16_t>("a u16 value"); break;
    case GgufType::kI16: v.i = in.read<int16_t>("an i16 value"); break;
    case GgufType::kU32: v.u = in.read<uint32_t>("a u32 value"); break;
    case GgufType::kI32: v.i = in.read<int32_t>("an i32 value"); break;
    case GgufType::kU64: v.u = in.read<uint64_t>("a u64 value"); break;
    case GgufType::kI64: v.i = in.read<int64_t>("an i64 value"); break;
    case GgufType::kF32: v.f = in.read<float>("an f32 value"); break;
    case GgufType::kF64: v.f = in.read<double>("an f64 value"); break;
    case GgufType::kBool: v.u = in.read<uint8_t>("a bool value") != 0; break;
    case GgufType::kString: {
      const uint64_t len = in.read<uint64_t>("a string length");
      TESSERA_REQUIRE(len <= in.remaining(), ErrorKind::kInvalidInput, in.file(),
                      ": metadata key '", key, "': string length ", len, " at byte offset ",
                      v.offset, " exceeds the ", in.remaining(), " bytes left in the file");
      v.str = in.read_bytes(len, "a string");
      break;
    }
    case GgufType::kArray: {
      TESSERA_REQUIRE(depth < kMaxArrayDepth, ErrorKind::kInvalidInput, in.file(),
                      ": metadata key '", key, "': arrays nested deeper than ", kMaxArrayDepth,
                      " at byte offset ", v.offset);
      const uint32_t et = in.read<uint32_t>("an array element type");
      TESSERA_REQUIRE(is_valid_type(et), ErrorKind::kInvalidInput, in.file(), ": metadata key '",
                      key, "': unknown array element type ", et, " at byte offset ", v.offset);
      v.elem_type = static_cast<GgufType>(et);
      v.count = in.read<uint64_t>("an array length");
      const uint64_t min = min_size(v.elem_type);
      TESSERA_REQUIRE(v.count <= in.remaining() / min, ErrorKind::kInvalidInput, in.file(),
                      ": metadata key '", key, "': array of ", v.count, " ",
                      gguf_type_name(v.elem_type), " elements at byte offset ", v.offset,
                      " cannot fit in the ", in.remaining(), " bytes left in the file");
      const uint8_t* start = in.here();
      if (fixed_size(v.elem_type) != 0) {
        in.skip(v.count * fixed_size(v.elem_type), "array elements");
      } else {
        for (uint64_t k = 0; k < v.count; ++k) read_value(in, v.elem_type, key, depth + 1);
      }
      v.raw = {start, static_cast<size_t>(in.here() - start)};
      break;
    }
  }
  return v;
}

template <typename T>
bool fits(const GgufValue& v) {
  if (!v.is_integer()) return false;
  const bool is_signed = v.type == GgufType::kI8 || v.type == GgufType::kI16 ||
                         v.type == GgufType::kI32 || v.type == GgufType::kI64;
  if (is_signed) {
    if (v.i < 0) return std::numeric_limits<T>::is_signed &&
                        v.i >= static_cast<int64_t>(std::numeric_limits<T>::min());
    return static_cast<uint64_t>(v.i) <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  }
  return v.u <= static_cast<uint64_t>(std::numeric_limits<T>::max());
}

template <typename T>
T int_value(const GgufValue& v) {
  const bool is_signed = v.type == GgufType::kI8 || v.type == GgufType::kI16 ||
                         v.type == GgufType::kI32 || v.type == GgufType::kI64;
  return is_signed ? static_cast<T>(v.i) : static_cast<T>(v.u);
}

std::string describe(const GgufValue& v) {
  std::string s = v.type_string();
  if (v.is_integer()) {
    const bool is_signed = v.type == GgufType::kI8 || v.type == GgufType::kI16 ||
                           v.type == GgufType::kI32 || v.type == GgufType::kI64;
    s += ' ';  // not `" " + std::string`: GCC 12 raises a false -Wrestrict on it
    s += is_signed ? std::to_string(v.i) : std::to_string(v.u);
  }
  return s;
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16:
    case GgufType::kU32: case GgufType::kI32: case GgufType::kU64: case GgufType::kI64:
      return true;
    default:
      return false;
  }
}

std::string GgufValue::type_string() const {
  if (type != GgufType::kArray) return std::string(gguf_type_name(type));
  return "array<" + std::string(gguf_type_name(elem_type)) + ">[" + std::to_string(count) + "]";
}

void GgufMetadata::parse(ByteReader& in, uint64_t count) {
  // Each pair takes at least 13 bytes (u64 key length, u32 type, 1-byte value).
  TESSERA_REQUIRE(count <= in.remaining() / 13, ErrorKind::kInvalidInput, in.file(),
                  ": metadata count ", count, " cannot fit in the ", in.remaining(),
                  " bytes left after byte offset ", in.offset());
  entries_.reserve(count);
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t at = in.offset();
    const uint64_t len = in.read<uint64_t>("a metadata key length");
    TESSERA_REQUIRE(len <= in.remaining(), ErrorKind::kInvalidInput, in.file(),
                    ": metadata key #", k, " at byte offset ", at, ": key length ", len,
                    " exceeds the ", in.remaining(), " bytes left in the file");
    const std::string_view key = in.read_bytes(len, "a metadata key");
    const uint64_t type_at = in.offset();
    const uint32_t type = in.read<uint32_t>("a metadata value type");
    TESSERA_REQUIRE(is_valid_type(type), ErrorKind::kInvalidInput, in.file(), ": metadata key '",
                    key, "': unknown value type ", type, " at byte offset ", type_at);
    GgufValue v = read_value(in, static_cast<GgufType>(type), key, 0);
    TESSERA_REQUIRE(by_key_.emplace(key, entries_.size()).second, ErrorKind::kInvalidInput,
                    in.file(), ": duplicate metadata key '", key, "' at byte offset ", at);
    entries_.emplace_back(key, v);
  }
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &entries_[it->second].second;
}

const GgufValue& GgufMetadata::at(std::string_view key) const {
  const GgufValue* v = find(key);
  TESSERA_REQUIRE(v != nullptr, ErrorKind::kNotFound, file_, ": metadata key '", key,
                  "' not found");
  return *v;
}

const GgufValue& GgufMetadata::require(std::string_view key, bool ok, const GgufValue& v,
                                       std::string_view expected) const {
  TESSERA_REQUIRE(ok, ErrorKind::kInvalidInput, file_, ": metadata key '", key, "' at byte offset ",
                  v.offset, ": expected ", expected, ", got ", describe(v));
  return v;
}

#define TESSERA_GGUF_INT_GETTER(NAME, T, EXPECTED)                                 \
  T GgufMetadata::get_##NAME(std::string_view key) const {                          \
    const GgufValue& v = at(key);                                                   \
    return int_value<T>(require(key, fits<T>(v), v, EXPECTED));                     \
  }                                                                                 \
  std::optional<T> GgufMetadata::opt_##NAME(std::string_view key) const {           \
    if (!has(key)) return std::nullopt;                                             \
    return get_##NAME(key);                                                         \
  }
TESSERA_GGUF_INT_GETTER(u32, uint32_t, "an integer in u32 range")
TESSERA_GGUF_INT_GETTER(i32, int32_t, "an integer in i32 range")
TESSERA_GGUF_INT_GETTER(u64, uint64_t, "an integer in u64 range")
TESSERA_GGUF_INT_GETTER(i64, int64_t, "an integer in i64 range")
#undef TESSERA_GGUF_INT_GETTER

double GgufMetadata::get_f64(std::string_view key) const {
  const GgufValue& v = at(key);
  return require(key, v.type == GgufType::kF32 || v.type == GgufType::kF64, v, "f32 or f64").f;
}
float GgufMetadata::get_f32(std::string_view key) const {
  const double d = get_f64(key);
  // Narrowing an out-of-range double is undefined behaviour; report it instead.
  TESSERA_REQUIRE(!std::isfinite(d) || std::fabs(d) <= std::numeric_limits<float>::max(),
                  ErrorKind::kInvalidInput, file_, ": metadata key '", key, "' at byte offset ",
                  at(key).offset, ": value ", d, " does not fit in f32");
  return static_cast<float>(d);
}
bool GgufMetadata::get_bool(std::string_view key) const {
  const GgufValue& v = at(key);
  return require(key, v.type == GgufType::kBool, v, "bool").u != 0;
}
std::string GgufMetadata::get_string(std::string_view key) const {
  const GgufValue& v = at(key);
  return std::string(require(key, v.type == GgufType::kString, v, "string").str);
}

std::optional<float> GgufMetadata::opt_f32(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_f32(key);
}
std::optional<bool> GgufMetadata::opt_bool(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_bool(key);
}
std::optional<std::string> GgufMetadata::opt_string(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_string(key);
}

const GgufValue& GgufMetadata::array_of(std::string_view key, std::string_view expected) const {
  const GgufValue& v = at(key);
  return require(key, v.type == GgufType::kArray, v, expected);
}

uint64_t GgufMetadata::array_size(std::string_view key) const {
  return array_of(key, "an array").count;
}

std::vector<std::string> GgufMetadata::get_string_array(std::string_view key) const {
  const GgufValue& v = array_of(key, "array<string>");
  require(key, v.elem_type == GgufType::kString, v, "array<string>");
  std::vector<std::string> out;
  out.reserve(v.count);  // bounded: the parser checked count * 8 <= bytes in the file
  ByteReader in(v.raw, file_);
  for (uint64_t k = 0; k < v.count; ++k) {
    const uint64_t len = in.read<uint64_t>("a string length");
    out.emplace_back(in.read_bytes(len, "a string"));
  }
  return out;
}

std::vector<float> GgufMetadata::get_f32_array(std::string_view key) const {
  const GgufValue& v = array_of(key, "array<f32>");
  require(key, v.elem_type == GgufType::kF32 || v.elem_type == GgufType::kF64, v,
          "array<f32> or array<f64>");
  std::vector<float> out(v.count);
  if (v.count == 0) return out;  // memcpy on an empty vector's null data() is UB
  if (v.elem_type == GgufType::kF32) {
    std::memcpy(out.data(), v.raw.data(), v.count * sizeof(float));
  } else {
    for (uint64_t k = 0; k < v.count; ++k) {
      double d;
      std::memcpy(&d, v.raw.data() + k * sizeof(double), sizeof(double));
      TESSERA_REQUIRE(!std::isfinite(d) || std::fabs(d) <= std::numeric_limits<float>::max(),
                      ErrorKind::kInvalidInput, file_, ": metadata key '", key, "': element ", k,
                      " (", d, ") does not fit in f32");
      out[k] = static_cast<float>(d);
    }
  }
  return out;
}

std::vector<int32_t> GgufMetadata::get_i32_array(std::string_view key) const {
  const GgufValue& v = array_of(key, "array<i32>");
  GgufValue probe;
  probe.type = v.elem_type;
  require(key, probe.is_integer(), v, "an array of integers");
  std::vector<int32_t> out(v.count);
  if (v.count == 0) return out;
  if (v.elem_type == GgufType::kI32) {
    std::memcpy(out.data(), v.raw.data(), v.count * sizeof(int32_t));
    return out;
  }
  ByteReader in(v.raw, file_);
  for (uint64_t k = 0; k < v.count; ++k) {
    const GgufValue e = read_value(in, v.elem_type, key, 1);
    TESSERA_REQUIRE(fits<int32_t>(e), ErrorKind::kInvalidInput, file_, ": metadata key '", key,
                    "': element ", k, " (", describe(e), ") does not fit in i32");
    out[k] = int_value<int32_t>(e);
  }
  return out;
}

std::vector<GgufValue> GgufMetadata::elements(const GgufValue& array, uint64_t limit) const {
  std::vector<GgufValue> out;
  if (array.type != GgufType::kArray) return out;
  const uint64_t n = std::min(limit, array.count);
  out.reserve(n);
  ByteReader in(array.raw, file_);
  for (uint64_t k = 0; k < n; ++k) out.push_back(read_value(in, array.elem_type, "", 1));
  return out;
}

}  // namespace tessera::checkpoint
