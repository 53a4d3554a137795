// A minimal protobuf wire-format reader (just enough for SentencePiece's
// ModelProto). Every read is bounds-checked; errors name the file, the message
// being read and the byte offset.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tessera {

class ProtoReader {
 public:
  enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

  // data spans [begin, end) of the whole file buffer; base is the file offset of
  // begin (for messages). what names the file, context the message ("trainer_spec").
  ProtoReader(std::string_view file, const uint8_t* data, size_t begin, size_t end,
              std::string_view context);

  bool done() const { return pos_ >= end_; }
  // Reads the next field key. Throws on a bad wire type.
  void next_field(uint32_t* field, WireType* type);
  uint64_t varint();
  uint32_t fixed32();
  uint64_t fixed64();
  // A length-delimited payload: returns its [begin, end) offsets and skips it.
  std::pair<size_t, size_t> bytes();
  std::string_view string();
  void skip(WireType type);
  ProtoReader sub(std::string_view context);  // length-delimited embedded message
  size_t pos() const { return pos_; }

 private:
  std::string_view file_;
  const uint8_t* data_;
  size_t pos_;
  size_t end_;
  std::string_view context_;
  [[noreturn]] void fail(const std::string& what) const;
};

}  // namespace tessera
