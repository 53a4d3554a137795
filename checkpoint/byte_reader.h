// A bounds-checked little-endian cursor over a byte span, for parsing binary headers.
// Every read checks the remaining bytes first and throws tessera::Error naming the
// file, the field being read and its byte offset, so a truncated or corrupt header is
// reported precisely and never read past.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "common/error.h"

namespace tessera::checkpoint {

static_assert(std::endian::native == std::endian::little,
              "checkpoint readers assume a little-endian host (as the formats are)");

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, const std::string& file)
      : bytes_(bytes), file_(file) {}

  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  uint64_t size() const { return bytes_.size(); }
  const std::string& file() const { return file_; }
  const uint8_t* here() const { return bytes_.data() + pos_; }

  void seek(uint64_t pos) { pos_ = pos; }

  // Throws unless n more bytes are available for `field`.
  void need(uint64_t n, std::string_view field) const {
    TESSERA_REQUIRE(n <= remaining(), ErrorKind::kInvalidInput, file_, ": truncated at byte offset ",
                    pos_, " reading ", field, " (needs ", n, " bytes, ", remaining(),
                    " left in a file of ", bytes_.size(), " bytes)");
  }

  template <typename T>
  T read(std::string_view field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  void skip(uint64_t n, std::string_view field) {
    need(n, field);
    pos_ += n;
  }

  // A view of the next n bytes (no copy).
  std::string_view read_bytes(uint64_t n, std::string_view field) {
    need(n, field);
    std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& file_;
  uint64_t pos_ = 0;
};

// a * b, or false on overflow.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool checked_mul(int64_t a, int64_t b, int64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

}  // namespace tessera::checkpoint
