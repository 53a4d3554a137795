#include "checkpoint/gguf_writer.h"

#include <cstring>
#include <fstream>

#include <glog/logging.h>

#include "checkpoint/ggml_types.h"
#include "checkpoint/gguf_reader.h"
#include "common/error.h"

namespace tessera::checkpoint {

GgufWriter::GgufWriter(uint32_t version, uint64_t alignment)
    : version_(version), alignment_(alignment) {
  CHECK(alignment > 0 && (alignment & (alignment - 1)) == 0) << "alignment " << alignment;
  if (alignment != kGgufDefaultAlignment) add_u32("general.alignment", static_cast<uint32_t>(alignment));
}

void GgufWriter::put_u32(std::vector<uint8_t>& out, uint32_t v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + 4);
}
void GgufWriter::put_u64(std::vector<uint8_t>& out, uint64_t v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + 8);
}
void GgufWriter::put_string(std::vector<uint8_t>& out, std::string_view s) {
  put_u64(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void GgufWriter::add_kv(std::string_view key, GgufType type, const void* payload, size_t n) {
  put_string(kv_, key);
  put_u32(kv_, static_cast<uint32_t>(type));
  const auto* p = static_cast<const uint8_t*>(payload);
  kv_.insert(kv_.end(), p, p + n);
  ++n_kv_;
}

void GgufWriter::add_u8(std::string_view k, uint8_t v) { add_kv(k, GgufType::kU8, &v, 1); }
void GgufWriter::add_i8(std::string_view k, int8_t v) { add_kv(k, GgufType::kI8, &v, 1); }
void GgufWriter::add_u16(std::string_view k, uint16_t v) { add_kv(k, GgufType::kU16, &v, 2); }
void GgufWriter::add_i16(std::string_view k, int16_t v) { add_kv(k, GgufType::kI16, &v, 2); }
void GgufWriter::add_u32(std::string_view k, uint32_t v) { add_kv(k, GgufType::kU32, &v, 4); }
void GgufWriter::add_i32(std::string_view k, int32_t v) { add_kv(k, GgufType::kI32, &v, 4); }
void GgufWriter::add_u64(std::string_view k, uint64_t v) { add_kv(k, GgufType::kU64, &v, 8); }
void GgufWriter::add_i64(std::string_view k, int64_t v) { add_kv(k, GgufType::kI64, &v, 8); }
void GgufWriter::add_f32(std::string_view k, float v) { add_kv(k, GgufType::kF32, &v, 4); }
void GgufWriter::add_f64(std::string_view k, double v) { add_kv(k, GgufType::kF64, &v, 8); }
void GgufWriter::add_bool(std::string_view k, bool v) {
  const uint8_t b = v ? 1 : 0;
  add_kv(k, GgufType::kBool, &b, 1);
}
void GgufWriter::add_string(std::string_view k, std::string_view v) {
  std::vector<uint8_t> p;
  put_string(p, v);
  add_kv(k, GgufType::kString, p.data(), p.size());
}
void GgufWriter::add_string_array(std::string_view k, const std::vector<std::string>& v) {
  std::vector<uint8_t> p;
  put_u32(p, static_cast<uint32_t>(GgufType::kString));
  put_u64(p, v.size());
  for (const std::string& s : v) put_string(p, s);
  add_kv(k, GgufType::kArray, p.data(), p.size());
}
void GgufWriter::add_f32_array(std::string_view k, const std::vector<float>& v) {
  std::vector<uint8_t> p;
  put_u32(p, static_cast<uint32_t>(GgufType::kF32));
  put_u64(p, v.size());
  const auto* b = reinterpret_cast<const uint8_t*>(v.data());
  p.insert(p.end(), b, b + v.size() * 4);
  add_kv(k, GgufType::kArray, p.data(), p.size());
}
void GgufWriter::add_i32_array(std::string_view k, const std::vector<int32_t>& v) {
  std::vector<uint8_t> p;
  put_u32(p, static_cast<uint32_t>(GgufType::kI32));
  put_u64(p, v.size());
  const auto* b = reinterpret_cast<const uint8_t*>(v.data());
  p.insert(p.end(), b, b + v.size() * 4);
  add_kv(k, GgufType::kArray, p.data(), p.size());
}
void GgufWriter::add_raw(std::string_view k, GgufType type, std::span<const uint8_t> value) {
  add_kv(k, type, value.data(), value.size());
}

void GgufWriter::add_tensor(std::string_view name, uint32_t ggml_type_id, std::vector<int64_t> shape,
                            std::span<const uint8_t> data) {
  const GgmlType* t = ggml_type(ggml_type_id);
  CHECK(t != nullptr) << "unknown ggml type " << ggml_type_id;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  CHECK_EQ(static_cast<int64_t>(data.size()), n / t->block_elems * t->block_bytes)
      << "tensor " << name;
  tensors_.push_back({std::string(name), ggml_type_id, std::move(shape),
                      std::vector<uint8_t>(data.begin(), data.end())});
}

std::vector<uint8_t> GgufWriter::bytes() const {
  auto pad = [&](std::vector<uint8_t>& out) {
    while (out.size() % alignment_ != 0) out.push_back(0);
  };
  std::vector<uint8_t> out;
  put_u32(out, kGgufMagic);
  put_u32(out, version_);
  put_u64(out, tensors_.size());
  put_u64(out, n_kv_);
  out.insert(out.end(), kv_.begin(), kv_.end());
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put_u32(out, static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put_u64(out, static_cast<uint64_t>(*it));
    put_u32(out, t.type);
    put_u64(out, offset);
    offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  pad(out);
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    pad(out);
  }
  return out;
}

void GgufWriter::write(const std::string& path) const {
  const std::vector<uint8_t> b = bytes();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  TESSERA_REQUIRE(f.good(), ErrorKind::kResource, path, ": cannot create");
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  f.close();
  TESSERA_REQUIRE(f.good(), ErrorKind::kResource, path, ": write failed");
}

}  // namespace tessera::checkpoint
