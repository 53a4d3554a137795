#include "tokenizer/protobuf_reader.h"

#include <cstring>

#include "common/error.h"

namespace tessera {

ProtoReader::ProtoReader(std::string_view file, const uint8_t* data, size_t begin, size_t end,
                         std::string_view context)
    : file_(file), data_(data), pos_(begin), end_(end), context_(context) {}

void ProtoReader::fail(const std::string& what) const {
  TESSERA_FAIL(ErrorKind::kInvalidInput, file_, ": corrupt protobuf in ", context_, " at offset ",
               pos_, ": ", what);
}

uint64_t ProtoReader::varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= end_) fail("truncated varint");
    const uint8_t b = data_[pos_++];
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
  fail("varint longer than 10 bytes");
}

uint32_t ProtoReader::fixed32() {
  if (end_ - pos_ < 4) fail("truncated fixed32");
  uint32_t v;
  std::memcpy(&v, data_ + pos_, 4);
  pos_ += 4;
  return v;
}

uint64_t ProtoReader::fixed64() {
  if (end_ - pos_ < 8) fail("truncated fixed64");
  uint64_t v;
  std::memcpy(&v, data_ + pos_, 8);
  pos_ += 8;
  return v;
}

void ProtoReader::next_field(uint32_t* field, WireType* type) {
  const size_t at = pos_;
  const uint64_t key = varint();
  const uint32_t wt = static_cast<uint32_t>(key & 7);
  if (wt != kVarint && wt != kFixed64 && wt != kLengthDelimited && wt != kFixed32) {
    pos_ = at;
    fail("unsupported wire type " + std::to_string(wt) + " for field " + std::to_string(key >> 3));
  }
  if ((key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) {
    pos_ = at;
    fail("bad field number " + std::to_string(key >> 3));
  }
  *field = static_cast<uint32_t>(key >> 3);
  *type = static_cast<WireType>(wt);
}

std::pair<size_t, size_t> ProtoReader::bytes() {
  const size_t at = pos_;
  const uint64_t len = varint();
  if (len > end_ - pos_) {
    pos_ = at;
    fail("length " + std::to_string(len) + " exceeds the " + std::to_string(end_ - pos_) +
         " bytes left");
  }
  const size_t b = pos_;
  pos_ += static_cast<size_t>(len);
  return {b, pos_};
}

std::string_view ProtoReader::string() {
  auto [b, e] = bytes();
  return std::string_view(reinterpret_cast<const char*>(data_ + b), e - b);
}

void ProtoReader::skip(WireType type) {
  switch (type) {
    case kVarint: varint(); break;
    case kFixed64: fixed64(); break;
    case kFixed32: fixed32(); break;
    case kLengthDelimited: bytes(); break;
  }
}

ProtoReader ProtoReader::sub(std::string_view context) {
  auto [b, e] = bytes();
  return ProtoReader(file_, data_, b, e, context);
}

}  // namespace tessera
