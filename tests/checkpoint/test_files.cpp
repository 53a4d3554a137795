#include "tests/checkpoint/test_files.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/error.h"

namespace tessera::checkpoint::testing {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const tessera::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception: ") + e.what() + ">";
  }
  return "<no error>";
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/tessera_ckpt_XXXXXX";
  const char* p = ::mkdtemp(tmpl);
  if (p == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::vector<uint8_t>& bytes) const {
  const std::string p = file(name);
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  return write(name, std::vector<uint8_t>(text.begin(), text.end()));
}

std::vector<uint8_t> make_llama2c(const Llama2cConfig& c, bool tied, int version) {
  std::vector<uint8_t> out;
  auto put_i32 = [&](int32_t v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + 4);
  };
  if (version == 1) {
    put_i32(static_cast<int32_t>(kLlama2cMagic));
    put_i32(1);
  }
  put_i32(c.dim);
  put_i32(c.hidden_dim);
  put_i32(c.n_layers);
  put_i32(c.n_heads);
  put_i32(c.n_kv_heads);
  put_i32(version == 0 && !tied ? -c.vocab_size : c.vocab_size);
  put_i32(c.seq_len);
  if (version == 1) {
    out.push_back(tied ? 1 : 0);
    out.resize(256, 0);
  }
  const int64_t dim = c.dim, hidden = c.hidden_dim, L = c.n_layers;
  const int64_t kv_dim = dim / c.n_heads * c.n_kv_heads;
  int64_t floats = c.vocab_size * dim + L * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim +
                                             3 * hidden * dim) + dim;
  if (version == 0) floats += 2 * int64_t{c.seq_len} * (dim / c.n_heads / 2);
  if (!tied) floats += c.vocab_size * dim;
  for (int64_t i = 0; i < floats; ++i) {
    const float v = static_cast<float>(i);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + 4);
  }
  return out;
}

std::vector<uint8_t> make_safetensors(const std::vector<StTensor>& tensors,
                                      const std::string& metadata_json) {
  std::string header = "{";
  if (!metadata_json.empty()) header += "\"__metadata__\":" + metadata_json;
  uint64_t offset = 0;
  for (const StTensor& t : tensors) {
    int64_t n = 1;
    std::string shape = "[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      n *= t.shape[i];
      shape += (i ? "," : "") + std::to_string(t.shape[i]);
    }
    shape += "]";
    const uint64_t bytes = static_cast<uint64_t>(n * t.elem_bytes);
    if (header.size() > 1) header += ",";
    header += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":" + shape +
              ",\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';  // as the reference writer: 8-byte aligned data
  std::vector<uint8_t> out = make_safetensors_raw(header, offset);
  for (uint64_t i = 0; i < offset; ++i) out[8 + header.size() + i] = static_cast<uint8_t>(i * 7 + 1);
  return out;
}

std::vector<uint8_t> make_safetensors_raw(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8);
  patch<uint64_t>(out, 0, header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

}  // namespace tessera::checkpoint::testing
